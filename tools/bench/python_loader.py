#!/usr/bin/env python3
"""Throughput of a Pytorch_Retinaface-style training loader, for comparison with visage's.

A reimplementation, for benchmarking only, of what Pytorch_Retinaface
(github.com/biubug6/Pytorch_Retinaface) does per training sample: `WiderFaceDetection`
(`data/wider_face.py`: `cv2.imread`, the `label.txt` faces as x1 y1 x2 y2 + 10 landmark values
+ label), its `preproc` (`data/data_augment.py`: `_crop` with PRE_SCALES {0.3, 0.45, 0.6, 0.8,
1.0} and 250 tries, `_distort`, `_pad_to_square`, `_mirror`, `_resize_subtract_mean` with a
random interpolation; `_expand` exists there but `preproc` does not call it), and a torch
`DataLoader` with `detection_collate` (stacked float32 [B, 3, S, S]).

    /tmp/ref/bin/python tools/bench/python_loader.py --label ROOT/train/label.txt \
        --images ROOT/WIDER_train/images --batch 32 --size 640 --workers 0 1 2 --batches 24

Prints images/s per `num_workers` (0 = everything in the main process) and, at 0 workers,
images per CPU-second of the process: on a machine shared with other work the steadier
per-core figure. OpenCV's own thread
pool is limited to one thread (`--cv-threads`) so that "workers" counts cores; Pytorch_Retinaface
leaves it at the default.
"""

import argparse
import os
import random
import time

import cv2
import numpy as np
import torch
import torch.utils.data as data

# ---------------------------------------------------------------- data/data_augment.py


def matrix_iof(a, b):
    """utils/box_utils.py: intersection of a's boxes with b's over the area of a's."""
    lt = np.maximum(a[:, np.newaxis, :2], b[:, :2])
    rb = np.minimum(a[:, np.newaxis, 2:], b[:, 2:])
    area_i = np.prod(rb - lt, axis=2) * (lt < rb).all(axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    return area_i / np.maximum(area_a[:, np.newaxis], 1)


def _crop(image, boxes, labels, landm, img_dim):
    height, width, _ = image.shape
    pad_image_flag = True

    for _ in range(250):
        PRE_SCALES = [0.3, 0.45, 0.6, 0.8, 1.0]
        scale = random.choice(PRE_SCALES)
        short_side = min(width, height)
        w = int(scale * short_side)
        h = w

        if width == w:
            l = 0
        else:
            l = random.randrange(width - w)
        if height == h:
            t = 0
        else:
            t = random.randrange(height - h)
        roi = np.array((l, t, l + w, t + h))

        value = matrix_iof(boxes, roi[np.newaxis])
        flag = value >= 1
        if not flag.any():
            continue

        centers = (boxes[:, :2] + boxes[:, 2:]) / 2
        mask_a = np.logical_and(roi[:2] < centers, centers < roi[2:]).all(axis=1)
        boxes_t = boxes[mask_a].copy()
        labels_t = labels[mask_a].copy()
        landms_t = landm[mask_a].copy()
        landms_t = landms_t.reshape([-1, 5, 2])

        if boxes_t.shape[0] == 0:
            continue

        image_t = image[roi[1] : roi[3], roi[0] : roi[2]]

        boxes_t[:, :2] = np.maximum(boxes_t[:, :2], roi[:2])
        boxes_t[:, :2] -= roi[:2]
        boxes_t[:, 2:] = np.minimum(boxes_t[:, 2:], roi[2:])
        boxes_t[:, 2:] -= roi[:2]

        landms_t[:, :, :2] = landms_t[:, :, :2] - roi[:2]
        landms_t[:, :, :2] = np.maximum(landms_t[:, :, :2], np.array([0, 0]))
        landms_t[:, :, :2] = np.minimum(landms_t[:, :, :2], roi[2:] - roi[:2])
        landms_t = landms_t.reshape([-1, 10])

        # make sure that the cropped image contains at least one face > 16 pixel at training image scale
        b_w_t = (boxes_t[:, 2] - boxes_t[:, 0] + 1) / w * img_dim
        b_h_t = (boxes_t[:, 3] - boxes_t[:, 1] + 1) / h * img_dim
        mask_b = np.minimum(b_w_t, b_h_t) > 0.0
        boxes_t = boxes_t[mask_b]
        labels_t = labels_t[mask_b]
        landms_t = landms_t[mask_b]

        if boxes_t.shape[0] == 0:
            continue

        pad_image_flag = False

        return image_t, boxes_t, labels_t, landms_t, pad_image_flag
    return image, boxes, labels, landm, pad_image_flag


def _distort(image):
    def _convert(image, alpha=1, beta=0):
        tmp = image.astype(float) * alpha + beta
        tmp[tmp < 0] = 0
        tmp[tmp > 255] = 255
        image[:] = tmp

    image = image.copy()

    if random.randrange(2):
        # brightness distortion
        if random.randrange(2):
            _convert(image, beta=random.uniform(-32, 32))

        # contrast distortion
        if random.randrange(2):
            _convert(image, alpha=random.uniform(0.5, 1.5))

        image = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)

        # saturation distortion
        if random.randrange(2):
            _convert(image[:, :, 1], alpha=random.uniform(0.5, 1.5))

        # hue distortion
        if random.randrange(2):
            tmp = image[:, :, 0].astype(int) + random.randint(-18, 18)
            tmp %= 180
            image[:, :, 0] = tmp

        image = cv2.cvtColor(image, cv2.COLOR_HSV2BGR)

    else:
        # brightness distortion
        if random.randrange(2):
            _convert(image, beta=random.uniform(-32, 32))

        image = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)

        # saturation distortion
        if random.randrange(2):
            _convert(image[:, :, 1], alpha=random.uniform(0.5, 1.5))

        # hue distortion
        if random.randrange(2):
            tmp = image[:, :, 0].astype(int) + random.randint(-18, 18)
            tmp %= 180
            image[:, :, 0] = tmp

        image = cv2.cvtColor(image, cv2.COLOR_HSV2BGR)

        # contrast distortion
        if random.randrange(2):
            _convert(image, alpha=random.uniform(0.5, 1.5))

    return image


def _mirror(image, boxes, landms):
    _, width, _ = image.shape
    if random.randrange(2):
        image = image[:, ::-1]
        boxes = boxes.copy()
        boxes[:, 0::2] = width - boxes[:, 2::-2]

        # landm
        landms = landms.copy()
        landms = landms.reshape([-1, 5, 2])
        landms[:, :, 0] = width - landms[:, :, 0]
        tmp = landms[:, 1, :].copy()
        landms[:, 1, :] = landms[:, 0, :]
        landms[:, 0, :] = tmp
        tmp1 = landms[:, 4, :].copy()
        landms[:, 4, :] = landms[:, 3, :]
        landms[:, 3, :] = tmp1
        landms = landms.reshape([-1, 10])

    return image, boxes, landms


def _pad_to_square(image, rgb_mean, pad_image_flag):
    if not pad_image_flag:
        return image
    height, width, _ = image.shape
    long_side = max(width, height)
    image_t = np.empty((long_side, long_side, 3), dtype=image.dtype)
    image_t[:, :] = rgb_mean
    image_t[0 : 0 + height, 0 : 0 + width] = image
    return image_t


def _resize_subtract_mean(image, insize, rgb_mean):
    interp_methods = [
        cv2.INTER_LINEAR,
        cv2.INTER_CUBIC,
        cv2.INTER_AREA,
        cv2.INTER_NEAREST,
        cv2.INTER_LANCZOS4,
    ]
    interp_method = interp_methods[random.randrange(5)]
    image = cv2.resize(image, (insize, insize), interpolation=interp_method)
    image = image.astype(np.float32)
    image -= rgb_mean
    return image.transpose(2, 0, 1)


class preproc(object):
    def __init__(self, img_dim, rgb_means):
        self.img_dim = img_dim
        self.rgb_means = rgb_means

    def __call__(self, image, targets):
        assert targets.shape[0] > 0, "this image does not have gt"

        boxes = targets[:, :4].copy()
        labels = targets[:, -1].copy()
        landm = targets[:, 4:-1].copy()

        image_t, boxes_t, labels_t, landm_t, pad_image_flag = _crop(
            image, boxes, labels, landm, self.img_dim
        )
        image_t = _distort(image_t)
        image_t = _pad_to_square(image_t, self.rgb_means, pad_image_flag)
        image_t, boxes_t, landm_t = _mirror(image_t, boxes_t, landm_t)
        height, width, _ = image_t.shape
        image_t = _resize_subtract_mean(image_t, self.img_dim, self.rgb_means)
        boxes_t[:, 0::2] /= width
        boxes_t[:, 1::2] /= height

        landm_t[:, 0::2] /= width
        landm_t[:, 1::2] /= height

        labels_t = np.expand_dims(labels_t, 1)
        targets = np.hstack((boxes_t, landm_t, labels_t))

        return image_t, targets


# ---------------------------------------------------------------- data/wider_face.py


class WiderFaceDetection(data.Dataset):
    def __init__(self, txt_path, images_dir, preproc=None):
        self.preproc = preproc
        self.imgs_path = []
        self.words = []
        labels = []
        for line in open(txt_path, "r").readlines():
            line = line.rstrip()
            if line.startswith("#"):
                if self.imgs_path:
                    self.words.append(labels)
                    labels = []
                self.imgs_path.append(os.path.join(images_dir, line[2:]))
            elif line:
                labels.append([float(x) for x in line.split(" ")])
        self.words.append(labels)

    def __len__(self):
        return len(self.imgs_path)

    def __getitem__(self, index):
        img = cv2.imread(self.imgs_path[index])

        labels = self.words[index]
        annotations = np.zeros((0, 15))
        for label in labels:
            annotation = np.zeros((1, 15))
            annotation[0, 0] = label[0]  # x1
            annotation[0, 1] = label[1]  # y1
            annotation[0, 2] = label[0] + label[2]  # x2
            annotation[0, 3] = label[1] + label[3]  # y2
            for k in range(5):  # landmarks
                annotation[0, 4 + 2 * k] = label[4 + 3 * k]
                annotation[0, 5 + 2 * k] = label[5 + 3 * k]
            annotation[0, 14] = -1 if annotation[0, 4] < 0 else 1
            annotations = np.append(annotations, annotation, axis=0)
        target = np.array(annotations)
        if self.preproc is not None:
            img, target = self.preproc(img, target)

        return torch.from_numpy(img), target


def detection_collate(batch):
    targets = []
    imgs = []
    for sample in batch:
        for tup in sample:
            if torch.is_tensor(tup):
                imgs.append(tup)
            elif isinstance(tup, type(np.empty(0))):
                targets.append(torch.from_numpy(tup).float())
    return (torch.stack(imgs, 0), targets)


# ---------------------------------------------------------------- timing


def batches(dataset, batch, workers):
    """Endless batches, a new shuffled DataLoader per epoch as Pytorch_Retinaface's train.py."""
    while True:
        loader = data.DataLoader(
            dataset,
            batch,
            shuffle=True,
            num_workers=workers,
            collate_fn=detection_collate,
            drop_last=True,
        )
        for b in loader:
            yield b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", required=True, help="RetinaFace label.txt")
    ap.add_argument("--images", required=True, help="folder the label.txt paths are under")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batches", type=int, default=24, help="timed batches (after one warm-up)")
    ap.add_argument("--cv-threads", type=int, default=1, help="cv2.setNumThreads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cv2.setNumThreads(args.cv_threads)
    torch.set_num_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rgb_mean = (104, 117, 123)  # bgr order, Pytorch_Retinaface's cfg
    dataset = WiderFaceDetection(args.label, args.images, preproc(args.size, rgb_mean))
    print(
        f"python loader: {len(dataset)} images, batch {args.batch}, {args.size}x{args.size}, "
        f"{args.batches} timed batches, cv2 {cv2.__version__} threads {cv2.getNumThreads()}, "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )
    for workers in args.workers:
        it = batches(dataset, args.batch, workers)
        first, _ = next(it)  # warm-up: worker start, first batch
        assert first.shape == (args.batch, 3, args.size, args.size), first.shape
        assert first.dtype == torch.float32
        t, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(args.batches):
            imgs, _ = next(it)
        dt = time.perf_counter() - t
        cpu = time.process_time() - cpu0  # the main process only: all the work at 0 workers
        del it
        n = args.batches * args.batch
        ips = n / dt
        cores = max(workers, 1)
        print(
            f"python workers={workers}: {ips:.1f} images/s ({ips / cores:.1f} per core), "
            f"{dt:.2f} s for {args.batches} batches"
            + (f", {n / cpu:.1f} images per CPU-second" if workers == 0 else "")
        )


if __name__ == "__main__":
    main()

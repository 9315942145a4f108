//! What the depthwise examples share.

/// RetinaFace MobileNet-0.25's 13 depthwise 3×3 layers: (channels, the layer's input stride
/// relative to the image, the convolution's stride).
pub const MOBILENET_025_DEPTHWISE: [(usize, usize, usize); 13] = [
    (8, 2, 1),
    (16, 2, 2),
    (32, 4, 1),
    (32, 4, 2),
    (64, 8, 1),
    (64, 8, 2),
    (128, 16, 1),
    (128, 16, 1),
    (128, 16, 1),
    (128, 16, 1),
    (128, 16, 1),
    (128, 16, 2),
    (256, 32, 1),
];

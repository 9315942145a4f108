//! A sharded loader (one machine of a data-parallel run) makes exactly its slots of the
//! whole loader's batches.

use super::fixtures::{cfg, fixture};
use crate::loader::*;

#[test]
fn shards_make_their_slots_of_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let ds = fixture(dir.path(), 9);
    let mut config = cfg(2);
    config.batch_size = 3;
    let whole = Loader::new(ds.clone(), config.clone()).unwrap();
    let batches: Vec<Batch> = whole.epoch(1).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 3);
    let per_image = 3 * 32 * 32;
    for slots in [0..1, 1..3, 0..3] {
        let shard = Loader::new(ds.clone(), config.clone())
            .unwrap()
            .sharded(slots.clone())
            .unwrap();
        assert_eq!(shard.batches_per_epoch(), 3);
        let parts: Vec<Batch> = shard.epoch_from(1, 0).collect::<Result<_, _>>().unwrap();
        for (part, batch) in parts.iter().zip(&batches) {
            assert_eq!(part.len(), slots.len());
            assert_eq!(part.indices, batch.indices[slots.clone()]);
            assert_eq!(part.targets, batch.targets[slots.clone()]);
            assert_eq!(
                part.images,
                batch.images[slots.start * per_image..slots.end * per_image]
            );
        }
    }
    for bad in [0..0, 2..4] {
        let err = match Loader::new(ds.clone(), config.clone())
            .unwrap()
            .sharded(bad)
        {
            Ok(_) => panic!("an empty or outside shard is refused"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("slots"), "{err}");
    }
}

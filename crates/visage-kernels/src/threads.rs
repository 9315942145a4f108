//! Where the CPU backend's parallel kernels are called from.

/// Runs `work` on one of rayon's global worker threads while the calling thread waits, and
/// returns its result. The CPU backend (`Flex`) splits its kernels over rayon's global pool:
/// called from a thread outside the pool, every parallel op is handed to the pool and waited
/// for (a futex wake-up and a sleep per op: ≈ 8 % of a one-thread training step's samples in
/// `perf`); called from a worker, it runs inline or splits from inside. Inside a pool already
/// (a data-parallel peer's one-thread pool, a caller's own pool), `work` runs in place.
/// The GPU backends are unaffected: their ops only queue work on the device.
pub fn on_pool_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}

/// [`on_pool_worker`] when `host_threads` (a backend's
/// [`KernelBackend::HOST_THREADS`](crate::KernelBackend::HOST_THREADS)), else `work` on the
/// calling thread: a GPU backend's work stays on the thread that always called it.
pub fn on_pool_worker_if<R: Send>(host_threads: bool, work: impl FnOnce() -> R + Send) -> R {
    if host_threads {
        on_pool_worker(work)
    } else {
        work()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_worker_of_the_global_pool() {
        assert_eq!(
            rayon::current_thread_index(),
            None,
            "tests run outside the pool"
        );
        let index = on_pool_worker(rayon::current_thread_index);
        assert!(index.is_some(), "ran outside rayon's pool");
    }

    #[test]
    fn without_host_threads_work_stays_on_the_calling_thread() {
        assert_eq!(on_pool_worker_if(false, rayon::current_thread_index), None);
        assert!(on_pool_worker_if(true, rayon::current_thread_index).is_some());
    }

    #[test]
    fn inside_a_pool_work_stays_on_the_calling_worker() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (outer, inner) = pool.install(|| {
            let outer = std::thread::current().id();
            (outer, on_pool_worker(|| std::thread::current().id()))
        });
        assert_eq!(outer, inner);
    }
}

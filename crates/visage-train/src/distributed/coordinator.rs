//! burn-collective's global orchestrator: the rendezvous every machine of a multi-machine
//! run registers with, which then pairs the machines for their gradient exchanges. Rank 0
//! starts one inside `visage train` (on `--master-addr`'s port), or it runs on its own
//! (`visage coordinator --port P`, e.g. on a login node).

use std::net::TcpListener;
use std::thread::JoinHandle;

use crate::error::TrainError;

/// Starts the coordinator on `port` (all interfaces) in a background thread for the rest
/// of the process.
///
/// # Errors
/// [`TrainError::Collective`] when the port is taken or the runtime cannot start.
pub fn start_coordinator(port: u16) -> Result<JoinHandle<()>, TrainError> {
    check_port_free(port)?;
    let runtime = runtime()?;
    std::thread::Builder::new()
        .name("visage-coordinator".into())
        .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
        .map_err(|e| TrainError::Collective(format!("starting the coordinator: {e}")))
}

/// Runs the coordinator on `port` until the process is interrupted (Ctrl-C, SIGTERM).
///
/// # Errors
/// [`TrainError::Collective`] when the port is taken or the runtime cannot start.
pub fn run_coordinator(port: u16) -> Result<(), TrainError> {
    check_port_free(port)?;
    runtime()?.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, TrainError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| TrainError::Collective(format!("starting the coordinator's runtime: {e}")))
}

/// burn-collective logs a failed bind and returns; a clear error here is better.
fn check_port_free(port: u16) -> Result<(), TrainError> {
    TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| {
        TrainError::Collective(format!(
            "the coordinator cannot listen on port {port}: {e} (another run or coordinator \
             uses it? pick another --master-addr port)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_a_clear_error() {
        let taken = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = start_coordinator(port).unwrap_err().to_string();
        assert!(err.contains(&format!("port {port}")), "{err}");
    }
}

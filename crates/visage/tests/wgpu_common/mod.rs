//! Whether the wgpu tests can run here: a Vulkan driver must be installed (on a machine
//! without a GPU, Mesa's lavapipe: `apt-get install mesa-vulkan-drivers libvulkan1`).
//!
//! `VISAGE_WGPU_TESTS=require` (set by `.ci/run`) turns a missing driver into a failure;
//! `VISAGE_WGPU_TESTS=skip` skips the tests (lavapipe is slow); unset, they run when a driver
//! is found and are skipped, with the reason printed, when none is.

/// Where the Vulkan loader looks for installable client drivers (ICD manifests).
const ICD_DIRS: [&str; 3] = [
    "/usr/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
];

/// Whether to run the wgpu tests; prints why not when they are skipped.
///
/// # Panics
/// When `VISAGE_WGPU_TESTS=require` and no Vulkan driver is installed.
pub fn wgpu_available() -> bool {
    let setting = std::env::var("VISAGE_WGPU_TESTS").unwrap_or_default();
    if setting == "skip" {
        eprintln!("wgpu test skipped: VISAGE_WGPU_TESTS=skip");
        return false;
    }
    let has_driver = std::env::var_os("VK_ICD_FILENAMES").is_some()
        || std::env::var_os("VK_DRIVER_FILES").is_some()
        || ICD_DIRS.iter().any(|dir| {
            std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false)
        });
    if !has_driver {
        let why = format!(
            "no Vulkan driver installed (no manifest in {}); on a machine without a GPU \
             install Mesa's software one: apt-get install mesa-vulkan-drivers libvulkan1",
            ICD_DIRS.join(", ")
        );
        assert!(setting != "require", "VISAGE_WGPU_TESTS=require: {why}");
        eprintln!("wgpu test skipped: {why}");
    }
    has_driver
}

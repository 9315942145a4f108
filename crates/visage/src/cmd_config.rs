//! `visage config`: the experiment configs shipped in `configs/`, built into the binary, so a
//! machine that has only the binary (a GPU server, a cluster node) can start from them:
//! `visage config fan > fan.toml`.

use anyhow::{bail, Result};
use clap::Args;

/// The shipped configs: name (the file stem in `configs/`) and text.
pub const SHIPPED: [(&str, &str); 13] = [
    (
        "quickstart",
        include_str!("../../../configs/quickstart.toml"),
    ),
    ("fan", include_str!("../../../configs/fan.toml")),
    ("fan-tiny", include_str!("../../../configs/fan-tiny.toml")),
    ("df2s2", include_str!("../../../configs/df2s2.toml")),
    (
        "df2s2-tiny",
        include_str!("../../../configs/df2s2-tiny.toml"),
    ),
    ("srn", include_str!("../../../configs/srn.toml")),
    ("srn-tiny", include_str!("../../../configs/srn-tiny.toml")),
    ("ainnoface", include_str!("../../../configs/ainnoface.toml")),
    (
        "ainnoface-tiny",
        include_str!("../../../configs/ainnoface-tiny.toml"),
    ),
    (
        "retinaface-mnet",
        include_str!("../../../configs/retinaface-mnet.toml"),
    ),
    (
        "retinaface-mnet-tiny",
        include_str!("../../../configs/retinaface-mnet-tiny.toml"),
    ),
    (
        "retinaface-r50",
        include_str!("../../../configs/retinaface-r50.toml"),
    ),
    (
        "retinaface-mesh-tiny",
        include_str!("../../../configs/retinaface-mesh-tiny.toml"),
    ),
];

/// Arguments of `visage config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The config to print (e.g. `fan`); without a name, the list of shipped configs.
    name: Option<String>,
}

/// Runs `visage config`.
pub fn run(args: ConfigArgs) -> Result<()> {
    let Some(name) = args.name else {
        for (name, _) in SHIPPED {
            println!("{name}");
        }
        return Ok(());
    };
    let name = name.strip_suffix(".toml").unwrap_or(&name);
    match SHIPPED.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => {
            print!("{text}");
            Ok(())
        }
        None => bail!(
            "no shipped config `{name}`; the shipped configs are: {}",
            SHIPPED.map(|(n, _)| n).join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `configs/` is shipped, under its stem, and parses as an experiment.
    #[test]
    fn every_config_file_is_shipped_and_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut stems: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        stems.sort();
        let mut shipped: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        shipped.sort();
        assert_eq!(shipped, stems);
        for (name, text) in SHIPPED {
            assert_eq!(
                text,
                std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap()
            );
        }
    }
}

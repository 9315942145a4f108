//! Fuzzing the two annotation readers: `wider_face_*_bbx_gt.txt` ([`parse_wider_txt`]) and
//! RetinaFace's `label.txt` ([`parse_label_txt`]).
//!
//! Every input goes through both readers, which must return `Ok` or `Err` and never panic (nor
//! abort on a huge allocation); a parse error must name a line of the input (1..=n, or n + 1 for
//! "end of file" in the box file, as `DataError::Parse` documents), and an `Ok` box file must
//! survive `format_wider_txt` → `parse_wider_txt` unchanged.
//!
//! Inputs: valid files (from random annotations) mutated by up to eight edits — truncation,
//! lines deleted / duplicated / swapped, numbers replaced by huge, negative, NaN, infinite or
//! non-numeric tokens, face counts that lie, extra spaces and tabs, CRLF, empty lines, unicode
//! and NUL bytes — plus raw arbitrary strings, strings over the files' own alphabet and lossily
//! decoded raw bytes.
//!
//! Each property runs 10,000 cases by default (5 properties: 50,000 inputs, about 2 s). The
//! 10⁶-input run (about 1 minute on 2 cores):
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test -p visage-data --test fuzz_readers -- --test-threads 2
//! ```

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use visage_data::label_txt::{format_label_txt, parse_label_txt};
use visage_data::wider_txt::{format_wider_txt, parse_wider_txt};
use visage_data::{DataError, FaceAnnotation, ImageAnnotation, LabelFace, LabelImage, Landmarks};
use visage_eval::FaceAttributes;

/// Cases per test: `PROPTEST_CASES` when set, else 10,000. No regression files: shrunk
/// failures become unit tests in the readers.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 10_000;
    }
    c
}

/// Runs both readers on `text` and checks the invariants; panics (a test failure) otherwise.
fn check(text: &str) -> Result<(), TestCaseError> {
    let n = text.lines().count();
    let path = Path::new("fuzz.txt");
    match parse_wider_txt(text, path) {
        Ok(images) => {
            let again = parse_wider_txt(&format_wider_txt(&images), path);
            prop_assert!(
                again.as_ref().is_ok_and(|a| *a == images),
                "box file does not survive format + parse: {images:?} -> {again:?}"
            );
        }
        Err(e) => check_error(&e, n, n + 1)?,
    }
    match parse_label_txt(text, path) {
        Ok(_) => {}
        Err(e) => check_error(&e, n, n)?,
    }
    Ok(())
}

/// A parse error names a line in `1..=max_line`; nothing else can come from a parser.
fn check_error(e: &DataError, n: usize, max_line: usize) -> Result<(), TestCaseError> {
    match e {
        DataError::Parse { line, path, .. } => {
            prop_assert_eq!(path, Path::new("fuzz.txt"));
            prop_assert!(
                (1..=max_line).contains(line),
                "line {} outside 1..={} ({} lines): {}",
                line,
                max_line,
                n,
                e
            );
            let prefix = format!("fuzz.txt:{line}: ");
            prop_assert!(e.to_string().starts_with(&prefix));
        }
        other => prop_assert!(false, "not a parse error: {other}"),
    }
    Ok(())
}

// ---------------------------------------------------------------- valid files

fn arb_path() -> impl Strategy<Value = String> {
    "[0-9]{1,2}--[A-Za-z_]{1,8}/[0-9a-z_]{1,12}\\.jpg"
}

fn arb_coord() -> impl Strategy<Value = f32> {
    prop_oneof![
        (0u32..2000).prop_map(|v| v as f32),
        (0.0f32..2000.0).prop_map(|v| (v * 8.0).round() / 8.0),
    ]
}

fn arb_wider_face() -> impl Strategy<Value = FaceAnnotation> {
    (
        proptest::array::uniform4(arb_coord()),
        proptest::array::uniform6(0u8..3),
    )
        .prop_map(|(bbox, a)| FaceAnnotation {
            bbox,
            attributes: FaceAttributes {
                blur: a[0],
                expression: a[1],
                illumination: a[2],
                invalid: a[3],
                occlusion: a[4],
                pose: a[5],
            },
            landmarks: None,
        })
}

fn arb_wider_file() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            arb_path(),
            proptest::collection::vec(arb_wider_face(), 0..5),
        )
            .prop_map(|(path, faces)| ImageAnnotation { path, faces }),
        0..5,
    )
    .prop_map(|images| format_wider_txt(&images))
}

fn arb_label_face() -> impl Strategy<Value = LabelFace> {
    (
        proptest::array::uniform4(arb_coord()),
        proptest::option::of((
            proptest::array::uniform5(proptest::array::uniform2(arb_coord())),
            proptest::array::uniform5(any::<bool>()),
        )),
        0.0f32..1.0,
    )
        .prop_map(|(bbox, lm, score)| LabelFace {
            bbox,
            landmarks: lm.map(|(points, visible)| Landmarks { points, visible }),
            score,
        })
}

fn arb_label_file() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            arb_path(),
            proptest::collection::vec(arb_label_face(), 0..5),
        )
            .prop_map(|(path, faces)| LabelImage { path, faces }),
        0..5,
    )
    .prop_map(|images| format_label_txt(&images))
}

// ---------------------------------------------------------------- mutations

/// Tokens that a number column should not accept (or should accept with care).
fn nasty_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NaN".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("infinity".to_string()),
        Just("1e40".to_string()),
        Just("-1e40".to_string()),
        Just("1e-50".to_string()),
        Just("3.4028236e38".to_string()),
        Just("18446744073709551616".to_string()),
        Just("18446744073709551615".to_string()),
        Just("9223372036854775807".to_string()),
        Just("4294967296".to_string()),
        Just("256".to_string()),
        Just("-0".to_string()),
        Just("-1".to_string()),
        Just("+3".to_string()),
        Just("0x10".to_string()),
        Just("1,5".to_string()),
        Just("1.2.3".to_string()),
        Just(".".to_string()),
        Just("-".to_string()),
        Just("e".to_string()),
        Just("abc".to_string()),
        Just("#".to_string()),
        Just("# x.jpg".to_string()),
        Just("٣".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        Just("é".to_string()),
        Just("😀".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f32>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        "\\PC{0,6}",
    ]
}

/// A face count that lies (when put on a count line) or any other lone integer.
fn lying_count() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..12).prop_map(|v| v.to_string()),
        Just(usize::MAX.to_string()),
        Just((usize::MAX / 2).to_string()),
        Just((1usize << 40).to_string()),
        Just(1_000_000_000.to_string()),
        Just("-1".to_string()),
        Just("1.0".to_string()),
        Just("".to_string()),
        Just(" 3 ".to_string()),
    ]
}

/// Junk inserted at a random place.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(" ".to_string()),
        Just("   ".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just("\n\n".to_string()),
        Just("\r".to_string()),
        Just("\r\n".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{feff}".to_string()),
        Just("é".to_string()),
        Just("日本".to_string()),
        Just("😀".to_string()),
        Just("#".to_string()),
        Just("# ".to_string()),
        Just("-".to_string()),
        Just("0".to_string()),
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the text at a character position.
    Truncate(Index),
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Replace one whitespace-separated token of a line.
    ReplaceToken(Index, Index, String),
    /// Replace a line holding a lone integer (a face count, usually) by another count.
    LieCount(Index, String),
    /// Replace a whole line.
    ReplaceLine(Index, String),
    /// Insert text at a character position.
    Insert(Index, String),
    /// Line endings of every line become `\r\n`.
    Crlf,
    /// Runs of spaces instead of single spaces.
    WidenSpaces,
    /// Remove every trailing newline.
    StripFinalNewline,
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (any::<Index>(), any::<Index>(), nasty_token())
            .prop_map(|(l, t, s)| Mutation::ReplaceToken(l, t, s)),
        2 => (any::<Index>(), lying_count()).prop_map(|(l, s)| Mutation::LieCount(l, s)),
        1 => (any::<Index>(), prop_oneof![nasty_token(), "[0-9 .-]{0,40}", "\\PC{0,40}"])
            .prop_map(|(l, s)| Mutation::ReplaceLine(l, s)),
        2 => (any::<Index>(), junk()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        1 => Just(Mutation::Crlf),
        1 => Just(Mutation::WidenSpaces),
        1 => Just(Mutation::StripFinalNewline),
    ]
}

/// Byte offset of the `i`-th character boundary (0..=len chars).
fn char_boundary(text: &str, i: &Index) -> usize {
    let n = text.chars().count();
    let k = i.index(n + 1);
    text.char_indices().nth(k).map_or(text.len(), |(b, _)| b)
}

fn apply(text: String, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let join = |lines: Vec<String>| lines.join("\n");
    match m {
        Mutation::Truncate(i) => {
            let b = char_boundary(&text, i);
            text[..b].to_string()
        }
        Mutation::DeleteLine(i) => {
            lines.remove(i.index(lines.len()));
            join(lines)
        }
        Mutation::DuplicateLine(i) => {
            let k = i.index(lines.len());
            lines.insert(k, lines[k].clone());
            join(lines)
        }
        Mutation::SwapLines(a, b) => {
            let n = lines.len();
            lines.swap(a.index(n), b.index(n));
            join(lines)
        }
        Mutation::ReplaceToken(l, t, s) => {
            let k = l.index(lines.len());
            let mut toks: Vec<String> = lines[k].split(' ').map(str::to_string).collect();
            let j = t.index(toks.len());
            toks[j] = s.clone();
            lines[k] = toks.join(" ");
            join(lines)
        }
        Mutation::LieCount(l, s) => {
            let counts: Vec<usize> = (0..lines.len())
                .filter(|&k| {
                    let t = lines[k].trim();
                    !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit())
                })
                .collect();
            if counts.is_empty() {
                return text;
            }
            lines[counts[l.index(counts.len())]] = s.clone();
            join(lines)
        }
        Mutation::ReplaceLine(l, s) => {
            let k = l.index(lines.len());
            lines[k] = s.clone();
            join(lines)
        }
        Mutation::Insert(i, s) => {
            let b = char_boundary(&text, i);
            let mut out = text;
            out.insert_str(b, s);
            out
        }
        Mutation::Crlf => text.replace('\n', "\r\n"),
        Mutation::WidenSpaces => text.replace(' ', " \t  "),
        Mutation::StripFinalNewline => text.trim_end_matches(['\n', '\r']).to_string(),
    }
}

fn mutated(base: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (base, proptest::collection::vec(arb_mutation(), 0..8))
        .prop_map(|(text, ms)| ms.iter().fold(text, apply))
}

// ---------------------------------------------------------------- raw inputs

/// Strings over the files' own alphabet, so that structure appears by chance.
fn file_alphabet() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9 \n]{0,120}",
        "[0-9a/._# \\-\n\r\t]{0,200}",
        "(a\\.jpg\n[0-3]\n([0-9 ]{0,30}\n){0,4}){0,4}",
        "(# a\\.jpg\n([0-9. \\-]{0,60}\n){0,3}){0,4}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn wider_mutated(text in mutated(arb_wider_file())) {
        check(&text)?;
    }

    #[test]
    fn label_mutated(text in mutated(arb_label_file())) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn alphabet_strings(text in file_alphabet()) {
        check(&text)?;
    }

    #[test]
    fn raw_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }
}

// ---------------------------------------------------------------- fixed cases

#[test]
fn unmutated_files_read_back() {
    let wider = "a/x.jpg\n2\n1 2 3 4 0 0 0 0 0 0 \n5 6 7 8 1 1 1 1 1 1 \nb/y.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n";
    let images = parse_wider_txt(wider, Path::new("w.txt")).unwrap();
    assert_eq!(format_wider_txt(&images), wider);
    let label = "# a/x.jpg\n1 2 3 4 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 0.5\n";
    let images = parse_label_txt(label, Path::new("l.txt")).unwrap();
    assert_eq!(format_label_txt(&images), label);
}

#[test]
fn non_utf8_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gt.txt");
    std::fs::write(&p, b"a/x.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \xff\n").unwrap();
    let e = visage_data::read_wider_txt(&p).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    let e = visage_data::read_label_txt(&p).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
}

//! The contracts in proto/ checked with buf (docs/contracts.md): `buf lint` passes, `buf breaking`
//! passes against the image of the released contracts (`contracts/released-v1.json`), and on a
//! copy of proto/ a renumbered field and a retyped field are refused by name while a new field
//! with a new number is not. buf is pinned in tools/buf; `.ci/run` installs it, and a missing buf
//! fails these tests.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("workspace root")
}

/// The pinned buf; panics (fails the test) when it is not installed.
fn buf() -> PathBuf {
    let path = root().join("tools/buf/node_modules/.bin/buf");
    assert!(
        path.is_file(),
        "{} is missing: `.ci/run` installs it (npm ci --prefix tools/buf); run it once or run that npm command yourself",
        path.display()
    );
    path
}

fn released_image() -> PathBuf {
    let image = root().join("contracts/released-v1.json");
    assert!(image.is_file(), "{} is missing", image.display());
    image
}

/// Runs buf with `args` in `dir`; returns whether it succeeded and its stdout and stderr.
fn run_buf(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(buf());
    cmd.args(args).current_dir(dir);
    let out: Output = cmd.output().unwrap_or_else(|e| {
        panic!("running {cmd:?}: {e} (tools/buf/node_modules/.bin/buf needs node: `.ci/run` installs nodejs)")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `buf breaking` of the workspace in `dir` against the released contracts.
fn breaking(dir: &Path) -> (bool, String) {
    let image = released_image();
    run_buf(
        dir,
        &["breaking", "--against", image.to_str().expect("utf-8 path")],
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// A copy of the buf workspace (buf.yaml and proto/) in a temp dir, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "shelfguard-contracts-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::copy(root().join("buf.yaml"), dir.join("buf.yaml")).expect("copy buf.yaml");
        copy_dir(&root().join("proto"), &dir.join("proto"));
        Copy(dir)
    }

    /// Replaces `from` (which must occur exactly once) by `to` in the copy's `file` under proto/.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.0.join("proto").join(file);
        let text = std::fs::read_to_string(&path).expect("read proto");
        assert_eq!(
            text.matches(from).count(),
            1,
            "{file} must contain `{from}` exactly once"
        );
        std::fs::write(&path, text.replace(from, to)).expect("write proto");
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const STORE: &str = "shelfguard/store/v1/store.proto";

#[test]
fn buf_lint_passes_on_proto() {
    let (ok, out) = run_buf(&root(), &["lint"]);
    assert!(ok, "buf lint failed (rules in buf.yaml):\n{out}");
}

#[test]
fn proto_is_compatible_with_the_released_contracts() {
    let (ok, out) = breaking(&root());
    assert!(
        ok,
        "buf breaking against contracts/released-v1.json failed: an incompatible change needs a .v2 (docs/contracts.md):\n{out}"
    );
}

#[test]
fn a_renumbered_field_is_refused_by_name() {
    let copy = Copy::new("renumbered");
    copy.edit(STORE, "string basket_id = 4;", "string basket_id = 40;");
    let (ok, out) = breaking(&copy.0);
    assert!(
        !ok,
        "buf breaking passed a renumbered Sale.basket_id:\n{out}"
    );
    assert!(
        out.contains(r#"field "4" with name "basket_id" on message "Sale""#),
        "the refusal does not name Sale.basket_id:\n{out}"
    );
}

#[test]
fn a_retyped_field_is_refused_by_name() {
    let copy = Copy::new("retyped");
    copy.edit(
        STORE,
        "  MovementKind kind = 5;\n  int32 quantity = 6;",
        "  MovementKind kind = 5;\n  int64 quantity = 6;",
    );
    let (ok, out) = breaking(&copy.0);
    assert!(
        !ok,
        "buf breaking passed a retyped StockMovement.quantity:\n{out}"
    );
    assert!(
        out.contains(
            r#"Field "6" with name "quantity" on message "StockMovement" changed type from "int32" to "int64""#
        ),
        "the refusal does not name StockMovement.quantity:\n{out}"
    );
}

/// The control for the two above: the check refuses changes, not everything.
#[test]
fn a_new_field_with_a_new_number_is_compatible() {
    let copy = Copy::new("added");
    copy.edit(
        STORE,
        "  string note = 7;\n}",
        "  string note = 7;\n  // Where the movement was recorded, e.g. \"back store\".\n  string location = 8;\n}",
    );
    let (ok, out) = breaking(&copy.0);
    assert!(
        ok,
        "buf breaking refused a new field with a new number:\n{out}"
    );
    let (ok, out) = run_buf(&copy.0, &["lint"]);
    assert!(ok, "buf lint refused a new field with a new number:\n{out}");
}

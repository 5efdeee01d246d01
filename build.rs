//! Build facts for `--version` and `aws_root_exporter_build_info`: the git revision (when built
//! from a git checkout, or `AWS_ROOT_EXPORTER_REVISION` when set, as a container build can pass
//! it), the commit's date as the build date (reproducible; `SOURCE_DATE_EPOCH` wins), and the
//! compiler's version.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=AWS_ROOT_EXPORTER_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit or checkout changes the revision: watch HEAD and the ref it names.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        println!("cargo:rerun-if-changed={common}/{head}");
        println!("cargo:rerun-if-changed={common}/packed-refs");
    }
    let revision = std::env::var("AWS_ROOT_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // SOURCE_DATE_EPOCH (seconds) as given; else the commit's date (RFC 3339).
    let date = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| git(&["show", "-s", "--format=%cI", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AWS_ROOT_EXPORTER_BUILD_REVISION={revision}");
    println!("cargo:rustc-env=AWS_ROOT_EXPORTER_BUILD_DATE={date}");
    println!("cargo:rustc-env=AWS_ROOT_EXPORTER_RUSTC_VERSION={rustc_version}");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo:rustc-env=AWS_ROOT_EXPORTER_PLATFORM={os}/{arch}");
}

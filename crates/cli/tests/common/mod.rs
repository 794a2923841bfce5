//! Running the `convnet` binary from the integration tests (each file uses a subset).
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn convnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convnet"))
        .args(args)
        .output()
        .expect("the convnet binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

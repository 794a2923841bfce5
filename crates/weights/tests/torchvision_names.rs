//! Every zoo architecture that torchvision has names and shapes its tensors exactly as
//! torchvision's `state_dict()` does, in the same order: the lists in
//! `fixtures/torchvision/keys/` were written by torchvision itself (`make_keys.py`).

use std::path::PathBuf;

use burn::tensor::Device;
use convnet_zoo::ZooOptions;

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/torchvision/keys")
}

fn torchvision_keys(arch: &str) -> Vec<(String, Vec<usize>)> {
    let path = keys_dir().join(format!("{arch}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{arch}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (key, shape) = line.split_once(' ').expect("`key shape` lines");
            let shape = shape
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|d| d.parse().unwrap())
                .collect();
            (key.to_string(), shape)
        })
        .collect()
}

#[test]
fn zoo_tensors_are_torchvisions_state_dict() {
    let device = Device::flex();
    let mut archs: Vec<String> = std::fs::read_dir(keys_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".txt").map(String::from)
        })
        .collect();
    archs.sort();
    assert!(archs.len() >= 19, "only {} key lists", archs.len());
    for arch in archs {
        let model = convnet_zoo::imagenet_spec(&arch, &ZooOptions::default())
            .unwrap_or_else(|| panic!("the zoo has no '{arch}'"))
            .build(&device)
            .unwrap();
        let ours = convnet_weights::expected(&model);
        let theirs = torchvision_keys(&arch);
        let first_difference = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "{arch}: ours {:?} vs torchvision {:?}",
            first_difference.map(|i| &ours[i]),
            first_difference.map(|i| &theirs[i])
        );
        assert_eq!(ours.len(), theirs.len(), "{arch}: tensor count");
    }
}

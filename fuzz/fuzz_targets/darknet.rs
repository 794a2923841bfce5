#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| convnet_fuzzing::darknet(data));

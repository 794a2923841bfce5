//! `--device cpu|gpu`: which Burn device runs the work.

use anyhow::Result;
use burn::tensor::Device;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// Burn's flex backend on the CPU.
    Cpu,
    /// Burn's Vulkan backend (wgpu).
    Gpu,
}

pub fn select(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        DeviceArg::Gpu => gpu(),
    }
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<Device> {
    use burn::tensor::{DeviceKind, Tensor};
    // wgpu finds no adapter only when the first kernel runs, and says so with a panic: run a tiny
    // one here, so a machine without a Vulkan driver gets an error instead of a crash later.
    let device = Device::vulkan(DeviceKind::DefaultDevice);
    let probe = device.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ok =
        std::panic::catch_unwind(move || Tensor::<1>::ones([4], &probe).sum().into_scalar::<f32>());
    std::panic::set_hook(hook);
    match ok {
        Ok(v) if v == 4.0 => {
            tracing::info!("using the Vulkan device");
            Ok(device)
        }
        _ => anyhow::bail!(
            "no usable Vulkan GPU was found (is a Vulkan driver and loader installed?)"
        ),
    }
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<Device> {
    anyhow::bail!(
        "this convnet was built without GPU support; rebuild with `cargo build --release --features gpu` (Vulkan)"
    )
}

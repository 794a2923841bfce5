//! `--device cpu|gpu|cuda`: which Burn device runs the work.

use anyhow::Result;
use burn::tensor::Device;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceArg {
    /// Burn's flex backend on the CPU.
    Cpu,
    /// Burn's Vulkan backend (wgpu).
    Gpu,
    /// Burn's CUDA backend (CubeCL) on the first NVIDIA GPU.
    Cuda,
}

pub fn select(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        DeviceArg::Gpu => gpu(),
        DeviceArg::Cuda => cuda(),
    }
}

#[cfg(feature = "gpu")]
fn gpu() -> Result<Device> {
    use burn::tensor::DeviceKind;
    probe(
        Device::vulkan(DeviceKind::DefaultDevice),
        "Vulkan",
        "is a Vulkan driver and loader installed?",
    )
}

#[cfg(not(feature = "gpu"))]
fn gpu() -> Result<Device> {
    anyhow::bail!(
        "this convnet was built without GPU support; rebuild with `cargo build --release --features gpu` (Vulkan)"
    )
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Device> {
    probe(
        Device::cuda(0),
        "CUDA",
        "is the NVIDIA driver's libcuda.so installed, and CUDA_PATH set to the folder holding nvvm/libdevice?",
    )
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Device> {
    anyhow::bail!(
        "this convnet was built without CUDA support; rebuild it with `scripts/build-cuda.sh` (see the README's CUDA section)"
    )
}

/// GPU backends find no driver or adapter only when the first kernel runs, and say so with a
/// panic: run a tiny one here, so a machine without the driver gets a one-line error instead of
/// a crash half-way through the work.
#[cfg(any(feature = "gpu", feature = "cuda"))]
fn probe(device: Device, backend: &str, hint: &str) -> Result<Device> {
    use burn::tensor::Tensor;
    let probe = device.clone();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let ran =
        std::panic::catch_unwind(move || Tensor::<1>::ones([4], &probe).sum().into_scalar::<f32>());
    std::panic::set_hook(hook);
    match ran {
        Ok(v) if v == 4.0 => {
            tracing::info!("using the {backend} device");
            Ok(device)
        }
        Ok(v) => anyhow::bail!("the {backend} device summed four ones to {v}; it is not usable"),
        Err(panic) => {
            let why = panic_text(panic.as_ref());
            anyhow::bail!("no usable {backend} GPU was found ({hint}): {why}")
        }
    }
}

/// The first line of a panic's message, for a one-line error.
#[cfg(any(feature = "gpu", feature = "cuda"))]
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("the backend panicked");
    text.lines().next().unwrap_or_default().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        let err = select(DeviceArg::Cuda).unwrap_err().to_string();
        assert!(err.contains("scripts/build-cuda.sh"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[cfg(any(feature = "gpu", feature = "cuda"))]
    #[test]
    fn panic_text_keeps_the_first_line_of_either_payload() {
        let owned: Box<dyn std::any::Any + Send> = Box::new(String::from("no driver\ndetails"));
        assert_eq!(panic_text(owned.as_ref()), "no driver");
        let borrowed: Box<dyn std::any::Any + Send> = Box::new("static message");
        assert_eq!(panic_text(borrowed.as_ref()), "static message");
    }
}

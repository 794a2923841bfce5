//! ECG-like signals: one lead, 250 samples a second, four rhythms.
//!
//! Each beat is a sum of Gaussians — a P wave (the atria), a Q-R-S complex (the ventricles) and
//! a T wave (their recovery) — placed at beat times drawn per rhythm:
//!
//! - **normal**: sinus rhythm, each RR interval within 3% of the heart rate's.
//! - **irregular**: atrial-fibrillation-like: RR intervals vary by ±20-35% at random (each
//!   differing from the one before by at least 10%), P waves absent or faint, small 4-8 Hz
//!   fibrillatory waves instead.
//! - **dropped beat**: a regular rhythm in which one or two P waves are not followed by a QRS or
//!   T wave (second-degree block): a pause of about two RR intervals, always inside the window.
//! - **wide QRS**: a regular rhythm whose QRS lasts 140-180 ms instead of 80-100 ms (bundle
//!   branch block), half of the time notched (an R' wave) and half with an inverted T wave.
//!
//! Every signal has its own heart rate (55-110 bpm), start phase and wave shapes, a baseline
//! wander (0.1-0.5 Hz, up to 0.3 of the R wave), Gaussian noise (sigma 0.02-0.08 of the R wave)
//! and an overall amplitude of 0.7-1.3.

use super::{balanced_labels, class_names, example_rng, normal, uniform};
use crate::{AugmentRng, DataError, TensorSet};

/// Class names in label order.
pub const ECG_CLASSES: [&str; 4] = ["normal", "irregular", "dropped beat", "wide QRS"];

/// Samples per second.
pub const ECG_SAMPLE_RATE: f32 = 250.0;

/// The shortest signal (3 s): one that holds a dropped beat's pause, with the beats on both
/// sides, at the slowest heart rate.
pub const ECG_MIN_LENGTH: usize = 750;

const TAG: u64 = 0xec9;

/// `n` signals of `length` samples (at [`ECG_SAMPLE_RATE`]: 1000 samples are 4 s), shape
/// `[1, length]`, classes [`ECG_CLASSES`] in equal numbers. Values are in units of the R
/// wave's height (about -0.7..1.8), not clamped.
pub fn ecg_set(n: usize, length: usize, seed: u64) -> Result<TensorSet, DataError> {
    if length < ECG_MIN_LENGTH {
        return Err(DataError::InvalidTensors(format!(
            "ECG signals need at least {ECG_MIN_LENGTH} samples ({} s at {ECG_SAMPLE_RATE} Hz) to hold a dropped beat; asked for {length}",
            ECG_MIN_LENGTH as f32 / ECG_SAMPLE_RATE
        )));
    }
    let labels = balanced_labels(n, ECG_CLASSES.len(), seed, TAG);
    let mut data = Vec::with_capacity(n * length);
    for (i, &label) in labels.iter().enumerate() {
        let trace = trace(
            Rhythm::ALL[label],
            length,
            &mut example_rng(seed, TAG, i),
            true,
        );
        data.extend(trace.signal);
    }
    TensorSet::new(data, labels, vec![1, length], class_names(&ECG_CLASSES))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rhythm {
    Normal,
    Irregular,
    Dropped,
    WideQrs,
}

impl Rhythm {
    /// In label order.
    pub(crate) const ALL: [Rhythm; 4] = [
        Rhythm::Normal,
        Rhythm::Irregular,
        Rhythm::Dropped,
        Rhythm::WideQrs,
    ];
}

/// One generated signal and where its conducted beats' R waves are.
pub(crate) struct Trace {
    pub signal: Vec<f32>,
    /// Times (s) of the R waves, including beats just outside the window.
    #[cfg_attr(not(test), allow(dead_code))]
    pub r_times: Vec<f32>,
    /// The heart rate's RR interval (s), around which the beats vary.
    #[cfg_attr(not(test), allow(dead_code))]
    pub rr: f32,
}

struct Beat {
    time: f32,
    /// False for a dropped beat: a P wave with no QRS or T after it.
    conducted: bool,
}

/// A signal of `rhythm`; without `noise`, no baseline wander and no Gaussian noise (what the
/// tests measure the rhythm on). The same draws are made either way, so a clean trace has the
/// beats of its noisy twin.
pub(crate) fn trace(rhythm: Rhythm, length: usize, rng: &mut AugmentRng, noise: bool) -> Trace {
    let fs = ECG_SAMPLE_RATE;
    let t_end = length as f32 / fs;
    let rr = 60.0 / uniform(rng, 55.0, 110.0);
    let beats = beat_times(rhythm, rr, t_end, rng);

    let irregular = rhythm == Rhythm::Irregular;
    let wide = rhythm == Rhythm::WideQrs;
    let pr = uniform(rng, 0.14, 0.20);
    let p_sigma = uniform(rng, 0.02, 0.03);
    let p_amp = uniform(rng, 0.1, 0.2);
    let qrs = if wide {
        uniform(rng, 0.14, 0.18)
    } else {
        uniform(rng, 0.08, 0.10)
    };
    let q_amp = uniform(rng, 0.05, 0.15);
    let s_amp = uniform(rng, 0.15, 0.35);
    let notched = wide && rng_bool(rng);
    let r_prime = uniform(rng, 0.3, 0.6);
    let t_amp = uniform(rng, 0.2, 0.35) * if wide && rng_bool(rng) { -1.0 } else { 1.0 };
    let t_sigma = uniform(rng, 0.04, 0.06);
    let qt = uniform(rng, 0.2, 0.25);

    let mut signal = vec![0f32; length];
    let mut r_times = Vec::new();
    for (k, beat) in beats.iter().enumerate() {
        let t = beat.time;
        let amp = if irregular {
            uniform(rng, 0.0, 0.04)
        } else {
            p_amp
        };
        add_wave(&mut signal, t - pr, p_sigma, amp);
        let r = uniform(rng, 0.95, 1.05);
        if !beat.conducted {
            continue;
        }
        r_times.push(t);
        add_wave(&mut signal, t - 0.3 * qrs, qrs / 10.0, -q_amp);
        add_wave(&mut signal, t, qrs / 7.0, r);
        if notched {
            add_wave(&mut signal, t + 0.28 * qrs, qrs / 10.0, r * r_prime);
            add_wave(&mut signal, t + 0.45 * qrs, qrs / 10.0, -s_amp);
        } else {
            add_wave(&mut signal, t + 0.3 * qrs, qrs / 9.0, -s_amp);
        }
        // The T wave follows the QRS's end and, like the QT interval, the local heart rate.
        let local_rr = beats
            .get(k + 1)
            .map_or(rr, |next| (next.time - t).clamp(0.3, 2.0));
        let t_wave = t + qrs / 2.0 + 0.05 + qt * local_rr.sqrt();
        add_wave(&mut signal, t_wave, t_sigma, t_amp);
    }

    if irregular {
        let (amp, freq, phase) = (
            uniform(rng, 0.01, 0.05),
            uniform(rng, 4.0, 8.0),
            uniform(rng, 0.0, std::f32::consts::TAU),
        );
        add_sine(&mut signal, amp, freq, phase);
    }
    let (wander, wander_freq, wander_phase) = (
        uniform(rng, 0.0, 0.3),
        uniform(rng, 0.1, 0.5),
        uniform(rng, 0.0, std::f32::consts::TAU),
    );
    let sigma = uniform(rng, 0.02, 0.08);
    let scale = uniform(rng, 0.7, 1.3);
    if noise {
        add_sine(&mut signal, wander, wander_freq, wander_phase);
        for v in &mut signal {
            *v += sigma * normal(rng);
        }
    }
    for v in &mut signal {
        *v *= scale;
    }
    Trace {
        signal,
        r_times,
        rr,
    }
}

fn rng_bool(rng: &mut AugmentRng) -> bool {
    uniform(rng, 0.0, 1.0) < 0.5
}

/// Beats covering the window and a little beyond it (a beat just outside still shows its P or
/// T wave), in time order.
fn beat_times(rhythm: Rhythm, rr: f32, t_end: f32, rng: &mut AugmentRng) -> Vec<Beat> {
    let spread = uniform(rng, 0.2, 0.35);
    let interval = |rng: &mut AugmentRng, previous: f32| match rhythm {
        Rhythm::Irregular => {
            // Rejection keeps two neighbouring intervals from matching by chance: with only
            // three or four beats in a window, that would look like a regular rhythm.
            let mut next = rr * (1.0 + uniform(rng, -spread, spread));
            for _ in 0..32 {
                if (next - previous).abs() >= 0.1 * rr {
                    break;
                }
                next = rr * (1.0 + uniform(rng, -spread, spread));
            }
            next
        }
        _ => rr * (1.0 + uniform(rng, -0.03, 0.03)),
    };
    let dropped = rhythm == Rhythm::Dropped;
    // A dropped beat's pause must lie wholly inside the window, so its first beat is placed
    // first; other rhythms just start at a random phase.
    let anchor = if dropped {
        uniform(rng, 0.05, t_end - 0.05 - 2.0 * 1.03 * rr)
    } else {
        uniform(rng, 0.0, rr)
    };
    let mut before = Vec::new();
    let (mut t, mut previous) = (anchor, rr);
    while t > -0.6 {
        previous = interval(rng, previous);
        t -= previous;
        before.push(t);
    }
    let mut times: Vec<f32> = before.into_iter().rev().collect();
    let first = times.len();
    let (mut t, mut previous) = (anchor, rr);
    while t < t_end + 0.3 {
        times.push(t);
        previous = interval(rng, previous);
        t += previous;
    }
    let mut beats: Vec<Beat> = times
        .into_iter()
        .map(|time| Beat {
            time,
            conducted: true,
        })
        .collect();
    if dropped {
        beats[first + 1].conducted = false;
        let fits = |beats: &[Beat], k: usize| {
            k >= 1
                && k + 1 < beats.len()
                && beats[k - 1..=k + 1].iter().all(|b| b.conducted)
                && beats[k - 1].time >= 0.05
                && beats[k + 1].time <= t_end - 0.05
        };
        let candidates: Vec<usize> = (0..beats.len()).filter(|&k| fits(&beats, k)).collect();
        let second = uniform(rng, 0.0, 1.0);
        if second < 0.5 && !candidates.is_empty() {
            let pick = ((second * 2.0) * candidates.len() as f32) as usize;
            beats[candidates[pick.min(candidates.len() - 1)]].conducted = false;
        }
    }
    beats
}

/// Adds a Gaussian wave centred at `centre` seconds, cut off where it is below 4e-6 of `amp`.
fn add_wave(signal: &mut [f32], centre: f32, sigma: f32, amp: f32) {
    let fs = ECG_SAMPLE_RATE;
    let lo = ((centre - 5.0 * sigma) * fs).floor().max(0.0) as usize;
    let hi = (((centre + 5.0 * sigma) * fs).ceil().max(0.0) as usize).min(signal.len());
    for (i, v) in signal.iter_mut().enumerate().take(hi).skip(lo) {
        let z = (i as f32 / fs - centre) / sigma;
        *v += amp * (-0.5 * z * z).exp();
    }
}

fn add_sine(signal: &mut [f32], amp: f32, freq: f32, phase: f32) {
    let w = std::f32::consts::TAU * freq / ECG_SAMPLE_RATE;
    for (i, v) in signal.iter_mut().enumerate() {
        *v += amp * (w * i as f32 + phase).sin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const LENGTH: usize = 1000;

    fn clean(rhythm: Rhythm, i: u64) -> Trace {
        let mut rng = AugmentRng::seed_from_u64(i * 31 + 5);
        trace(rhythm, LENGTH, &mut rng, false)
    }

    /// R peaks found the way a simple QRS detector would: local maxima above half the
    /// highest value, at least 250 ms apart (the larger one wins).
    fn r_peaks(signal: &[f32]) -> Vec<usize> {
        let max = signal.iter().copied().fold(f32::MIN, f32::max);
        let refractory = (0.25 * ECG_SAMPLE_RATE) as usize;
        let mut peaks: Vec<usize> = Vec::new();
        for i in 1..signal.len() - 1 {
            let v = signal[i];
            if v < 0.5 * max || v < signal[i - 1] || v <= signal[i + 1] {
                continue;
            }
            match peaks.last_mut() {
                Some(last) if i - *last < refractory => {
                    if v > signal[*last] {
                        *last = i;
                    }
                }
                _ => peaks.push(i),
            }
        }
        peaks
    }

    fn intervals(peaks: &[usize]) -> Vec<f32> {
        peaks.windows(2).map(|w| (w[1] - w[0]) as f32).collect()
    }

    fn mean(v: &[f32]) -> f32 {
        v.iter().sum::<f32>() / v.len() as f32
    }

    /// Samples around `peak` at or above half its height: the R wave's width.
    fn half_width(signal: &[f32], peak: usize) -> usize {
        let half = signal[peak] / 2.0;
        let left = (0..peak).rev().take_while(|&i| signal[i] >= half).count();
        let right = (peak + 1..signal.len())
            .take_while(|&i| signal[i] >= half)
            .count();
        left + right + 1
    }

    #[test]
    fn detected_beats_are_the_generated_ones() {
        for rhythm in Rhythm::ALL {
            for i in 0..20 {
                let t = clean(rhythm, i);
                let inside: Vec<usize> = t
                    .r_times
                    .iter()
                    .map(|&s| (s * ECG_SAMPLE_RATE).round())
                    .filter(|&s| s >= 2.0 && s <= LENGTH as f32 - 3.0)
                    .map(|s| s as usize)
                    .collect();
                let found = r_peaks(&t.signal);
                assert_eq!(found.len(), inside.len(), "{rhythm:?} {i}");
                for (f, want) in found.iter().zip(&inside) {
                    assert!(
                        f.abs_diff(*want) <= 2,
                        "{rhythm:?} {i}: {found:?} {inside:?}"
                    );
                }
            }
        }
    }

    /// RR intervals in units of the trace's heart-rate interval.
    fn relative_intervals(t: &Trace) -> Vec<f32> {
        let rr = t.rr * ECG_SAMPLE_RATE;
        intervals(&r_peaks(&t.signal))
            .into_iter()
            .map(|r| r / rr)
            .collect()
    }

    #[test]
    fn normal_rhythm_is_regular_and_irregular_is_not() {
        for i in 0..40 {
            let rr = relative_intervals(&clean(Rhythm::Normal, i));
            assert!(!rr.is_empty(), "{i}: {rr:?}");
            assert!(
                rr.iter().all(|&r| (r - 1.0).abs() < 0.04),
                "normal {i}: {rr:?}"
            );
            let rr = intervals(&r_peaks(&clean(Rhythm::Irregular, i).signal));
            let m = mean(&rr);
            let biggest_step = rr
                .windows(2)
                .map(|w| (w[1] - w[0]).abs() / m)
                .fold(0.0, f32::max);
            assert!(
                rr.len() >= 2 && biggest_step > 0.08,
                "irregular {i}: {rr:?}"
            );
        }
    }

    #[test]
    fn a_dropped_beat_leaves_a_pause_of_two_intervals() {
        let mut two_drops = 0;
        for i in 0..40 {
            let rr = relative_intervals(&clean(Rhythm::Dropped, i));
            let pauses = rr.iter().filter(|&&r| (r - 2.0).abs() < 0.08).count();
            let regular = rr.iter().filter(|&&r| (r - 1.0).abs() < 0.04).count();
            assert!(pauses >= 1 && pauses + regular == rr.len(), "{i}: {rr:?}");
            two_drops += usize::from(pauses == 2);
        }
        assert!((5..=30).contains(&two_drops), "{two_drops}");
    }

    #[test]
    fn wide_qrs_is_wider() {
        let widths = |rhythm| {
            let w: Vec<f32> = (0..30)
                .flat_map(|i| {
                    let s = clean(rhythm, i).signal;
                    r_peaks(&s)
                        .into_iter()
                        .map(move |p| half_width(&s, p) as f32)
                })
                .collect();
            mean(&w)
        };
        let (narrow, wide) = (widths(Rhythm::Normal), widths(Rhythm::WideQrs));
        // 80-100 ms against 140-180 ms: about 7 samples at half height against 12.
        assert!(wide > 1.5 * narrow, "{narrow} vs {wide}");
        assert!((5.0..10.0).contains(&narrow), "{narrow}");
    }

    #[test]
    fn set_is_seeded_balanced_and_finite() {
        let a = ecg_set(40, 800, 3).unwrap();
        assert_eq!(a.shape, vec![1, 800]);
        assert_eq!((a.len(), a.data.len()), (40, 40 * 800));
        assert_eq!(a.class_counts(), vec![10; 4]);
        assert_eq!(a.classes, ECG_CLASSES);
        assert!(a.data.iter().all(|v| v.is_finite() && v.abs() < 4.0));
        let b = ecg_set(40, 800, 3).unwrap();
        assert_eq!(a.data, b.data);
        assert_eq!(a.labels, b.labels);
        assert_ne!(ecg_set(40, 800, 4).unwrap().data, a.data);
        // A longer set extends a shorter one.
        assert_eq!(ecg_set(10, 800, 3).unwrap().data, a.data[..8000]);
        let msg = ecg_set(4, 500, 0).unwrap_err().to_string();
        assert!(msg.contains("at least 750 samples"), "{msg}");
    }

    #[test]
    fn noise_and_wander_are_there() {
        let mut rng = AugmentRng::seed_from_u64(9);
        let noisy = trace(Rhythm::Normal, LENGTH, &mut rng, true).signal;
        let mut rng = AugmentRng::seed_from_u64(9);
        let quiet = trace(Rhythm::Normal, LENGTH, &mut rng, false).signal;
        let diff: Vec<f32> = noisy.iter().zip(&quiet).map(|(a, b)| a - b).collect();
        let rms = (diff.iter().map(|d| d * d).sum::<f32>() / diff.len() as f32).sqrt();
        assert!(rms > 0.01, "{rms}");
    }
}

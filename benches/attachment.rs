//! Attachment encryption and decryption against raw AES-256-GCM over the
//! same bytes, in the same run (goal: at least 0.9x the raw throughput);
//! then, before the benchmarks, the peak memory of streaming a 100 MiB file
//! (the growth of the process's `VmHWM` in `/proc/self/status`).
//!
//! `cargo bench --bench attachment -- --warm-up-time 1 --measurement-time 5`
#![allow(missing_docs, clippy::unwrap_used)]

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use secret_chat::attachment;
use std::hint::black_box;
use std::io::{self, Read};

const MIB: usize = 1024 * 1024;
const SIZES: &[(usize, &str)] = &[(MIB, "1MiB"), (100 * MIB, "100MiB")];

fn raw_key() -> Aes256Gcm {
    Aes256Gcm::new(&[7u8; 32].into())
}

fn bench(c: &mut Criterion) {
    for &(size, name) in SIZES {
        let data = vec![0x5au8; size];
        let mut g = c.benchmark_group(format!("attachment/{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        if size > MIB {
            g.sample_size(10);
        }
        g.bench_function(BenchmarkId::new("raw_gcm_encrypt", name), |b| {
            let cipher = raw_key();
            let mut buf = data.clone();
            b.iter(|| {
                let tag = cipher
                    .encrypt_inout_detached(&[1u8; 12].into(), b"", buf.as_mut_slice().into())
                    .unwrap();
                black_box(tag);
            })
        });
        g.bench_function(BenchmarkId::new("encrypt", name), |b| {
            b.iter(|| {
                let p = attachment::encrypt(&data[..], io::sink(), "video/mp4").unwrap();
                black_box(p);
            })
        });
        let mut blob = Vec::with_capacity(size + size / 100 + 4096);
        let pointer = attachment::encrypt(&data[..], &mut blob, "video/mp4").unwrap();
        let cipher = raw_key();
        let mut sealed = data.clone();
        let tag = cipher
            .encrypt_inout_detached(&[1u8; 12].into(), b"", sealed.as_mut_slice().into())
            .unwrap();
        g.bench_function(BenchmarkId::new("raw_gcm_decrypt", name), |b| {
            b.iter_batched_ref(
                || sealed.clone(),
                |buf| {
                    cipher
                        .decrypt_inout_detached(
                            &[1u8; 12].into(),
                            b"",
                            buf.as_mut_slice().into(),
                            &tag,
                        )
                        .unwrap();
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(BenchmarkId::new("decrypt", name), |b| {
            b.iter(|| attachment::decrypt(&pointer, &blob[..], io::sink()).unwrap())
        });
        g.finish();
    }
}

/// `VmHWM` (peak resident set) of this process, in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Streams 100 MiB from a generator through `encrypt` into a file, then
/// from the file through `decrypt` into nothing, and prints how much the
/// process's peak memory grew.
fn peak_memory() {
    let size = 100 * MIB as u64;
    let path = std::env::temp_dir().join(format!("secret-chat-bench-{}", std::process::id()));
    let before = vm_hwm_kib();
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let pointer = attachment::encrypt(io::repeat(0x5a).take(size), file, "video/mp4").unwrap();
    let after_encrypt = vm_hwm_kib();
    let reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let n = attachment::decrypt(&pointer, reader, io::sink()).unwrap();
    let after_decrypt = vm_hwm_kib();
    let _ = std::fs::remove_file(&path);
    assert_eq!(n, size);
    if let (Some(b), Some(e), Some(d)) = (before, after_encrypt, after_decrypt) {
        println!(
            "peak memory, 100 MiB attachment ({} chunks of {} KiB): VmHWM {b} KiB before, \
             +{} KiB after encrypt, +{} KiB after decrypt",
            pointer.chunk_count(),
            pointer.chunk_size() / 1024,
            e - b,
            d - b
        );
    }
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// On a noisy shared machine criterion's groups run minutes apart; this
/// alternates raw and crate runs `rounds` times and prints, per operation,
/// the median over rounds of the throughput ratio crate / raw, against raw
/// AES-256-GCM in place (no copy) and against one copy of the input into a
/// buffer plus raw AES-256-GCM in place (what any `Read`-based API does).
fn interleaved(size: usize, name: &str, rounds: usize) {
    use std::time::Instant;
    fn timed(f: impl FnOnce()) -> f64 {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    }
    let data = vec![0x5au8; size];
    let cipher = raw_key();
    let mut buf = data.clone();
    let mut blob = Vec::with_capacity(size + size / 100 + 4096);
    let pointer = attachment::encrypt(&data[..], &mut blob, "video/mp4").unwrap();
    let mut sealed = data.clone();
    let tag = cipher
        .encrypt_inout_detached(&[1u8; 12].into(), b"", sealed.as_mut_slice().into())
        .unwrap();
    // Ratios: encrypt vs raw, vs copy + raw; decrypt vs raw, vs copy + raw.
    let mut r: [Vec<f64>; 4] = Default::default();
    for _ in 0..rounds {
        let raw_e = timed(|| {
            let t =
                cipher.encrypt_inout_detached(&[1u8; 12].into(), b"", buf.as_mut_slice().into());
            black_box(t.unwrap());
        });
        let copy_e = timed(|| {
            buf.copy_from_slice(&data);
            let t =
                cipher.encrypt_inout_detached(&[1u8; 12].into(), b"", buf.as_mut_slice().into());
            black_box(t.unwrap());
        });
        let crate_e = timed(|| {
            black_box(attachment::encrypt(&data[..], io::sink(), "video/mp4").unwrap());
        });
        buf.copy_from_slice(&sealed);
        let raw_d = timed(|| {
            let t = cipher.decrypt_inout_detached(
                &[1u8; 12].into(),
                b"",
                buf.as_mut_slice().into(),
                &tag,
            );
            t.unwrap();
        });
        let copy_d = timed(|| {
            buf.copy_from_slice(&sealed);
            let t = cipher.decrypt_inout_detached(
                &[1u8; 12].into(),
                b"",
                buf.as_mut_slice().into(),
                &tag,
            );
            t.unwrap();
        });
        let crate_d = timed(|| {
            attachment::decrypt(&pointer, &blob[..], io::sink()).unwrap();
        });
        for (v, x) in r.iter_mut().zip([
            raw_e / crate_e,
            copy_e / crate_e,
            raw_d / crate_d,
            copy_d / crate_d,
        ]) {
            v.push(x);
        }
    }
    let [a, b, c, d] = &mut r;
    println!(
        "interleaved {name} ({rounds} rounds, median ratio of throughputs): encrypt {:.2}x raw, \
         {:.2}x copy + raw; decrypt {:.2}x raw, {:.2}x copy + raw",
        median(a),
        median(b),
        median(c),
        median(d),
    );
}

fn main() {
    peak_memory();
    if std::env::var_os("ATTACHMENT_INTERLEAVED").is_some() {
        interleaved(MIB, "1MiB", 300);
        interleaved(100 * MIB, "100MiB", 12);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}

//! Every fixture is read as pyedflib (EDFlib) reads it: tests/data/expected.json comes from
//! tests/data/make_expected.py, which reads the same files with pyedflib. No Python is needed here.

use std::path::{Path, PathBuf};

use ionm_edf::{EdfError, EdfReader, Header, Variant};
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// CRC-32 (IEEE, as zlib.crc32), bitwise: independent of the code under test.
fn crc32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("number expected, got {v}"))
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

/// EDFlib shows "X" (unknown) as "X" for some subfields and "" for others, and the birth date as "30 jun 1969";
/// compare both sides in one normal form.
fn norm(s: &str) -> String {
    let s = s.trim();
    if s == "X" {
        String::new()
    } else {
        s.replace('-', " ").to_lowercase()
    }
}

fn check_file(name: &str, path: &Path, exp: &Value) {
    let mut r = EdfReader::open(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let h: Header = r.header().clone();
    let ctx = |what: &str| format!("{name}: {what}");

    let (format, variant) = (exp["format"].as_str().unwrap(), exp["variant"].as_str().unwrap());
    assert_eq!(
        format!("{:?}", h.format),
        if format == "EDF" { "Edf16" } else { "Bdf24" },
        "{}",
        ctx("format")
    );
    assert_eq!(format!("{:?}", h.variant), variant, "{}", ctx("variant"));
    let s = h.start;
    let start = [
        s.year as i64,
        s.month as i64,
        s.day as i64,
        s.hour as i64,
        s.minute as i64,
        s.second as i64,
    ];
    assert_eq!(start.to_vec(), ints(&exp["start"]), "{}", ctx("start"));
    assert_eq!(
        r.num_records() as i64,
        exp["records"].as_i64().unwrap(),
        "{}",
        ctx("records")
    );
    assert_eq!(
        h.record_duration,
        f(&exp["record_duration"]),
        "{}",
        ctx("record duration")
    );
    let duration = r.num_records() as f64 * h.record_duration;
    assert!(
        (duration - f(&exp["file_duration"])).abs() < 1e-9,
        "{}",
        ctx("file duration")
    );

    if h.variant == Variant::Plain {
        assert_eq!(h.patient, exp["patient"].as_str().unwrap(), "{}", ctx("patient"));
        assert_eq!(
            h.recording,
            exp["recording"].as_str().unwrap(),
            "{}",
            ctx("recording")
        );
    } else {
        let sub = &exp["subfields"];
        let p = h.patient_id();
        let rec = h.recording_id().unwrap_or_default();
        let sex = match sub["sex"].as_str().unwrap() {
            "Male" => "M",
            "Female" => "F",
            _ => "",
        };
        for (ours, key) in [
            (&p.code, "patientcode"),
            (&p.name, "patientname"),
            (&p.additional, "patient_additional"),
            (&p.birthdate, "birthdate"),
            (&rec.admincode, "admincode"),
            (&rec.technician, "technician"),
            (&rec.equipment, "equipment"),
            (&rec.additional, "recording_additional"),
        ] {
            assert_eq!(norm(ours), norm(sub[key].as_str().unwrap()), "{}", ctx(key));
        }
        assert_eq!(norm(&p.sex), norm(sex), "{}", ctx("sex"));
    }

    // Record starts: the first one carries the sub-second start, which EDFlib keeps in 100 ns units (truncated).
    let scan = r.scan_annotations().unwrap_or_else(|e| panic!("{name}: {e}"));
    let first = scan.record_starts.first().copied().unwrap_or(0.0);
    assert_eq!(
        r.first_record_start().unwrap(),
        first,
        "{}",
        ctx("first record start")
    );
    let sub_100ns = exp["start_subsecond_100ns"].as_i64().unwrap() as f64;
    assert!(
        (first * 1e7 - sub_100ns).abs() <= 1.0,
        "{}: {first} vs {sub_100ns}",
        ctx("sub-second start")
    );
    if h.variant != Variant::Discontinuous {
        for (i, &t) in scan.record_starts.iter().enumerate() {
            assert!(
                (t - first - i as f64 * h.record_duration).abs() < 1e-6,
                "{}",
                ctx("contiguous starts")
            );
        }
    }

    let data: Vec<usize> = h.data_signals().collect();
    let exp_signals = exp["signals"].as_array().unwrap();
    assert_eq!(data.len(), exp_signals.len(), "{}", ctx("signal count"));
    for (&i, es) in data.iter().zip(exp_signals) {
        let sig = &h.signals[i];
        let c = |what: &str| format!("{name}: signal {i} ({}): {what}", sig.label);
        assert_eq!(sig.label, es["label"].as_str().unwrap(), "{}", c("label"));
        assert_eq!(
            sig.transducer,
            es["transducer"].as_str().unwrap(),
            "{}",
            c("transducer")
        );
        assert_eq!(
            sig.physical_dimension,
            es["dimension"].as_str().unwrap(),
            "{}",
            c("dimension")
        );
        assert_eq!(
            sig.prefiltering,
            es["prefilter"].as_str().unwrap(),
            "{}",
            c("prefilter")
        );
        assert_eq!(
            sig.samples_per_record as i64,
            es["samples_per_record"].as_i64().unwrap(),
            "{}",
            c("spr")
        );
        let fs = h.sample_rate(i).unwrap();
        assert!((fs - f(&es["fs"])).abs() <= 1e-9 * fs, "{}: {fs}", c("fs"));
        assert_eq!(sig.physical_min, f(&es["pmin"]), "{}", c("pmin"));
        assert_eq!(sig.physical_max, f(&es["pmax"]), "{}", c("pmax"));
        assert_eq!(
            sig.digital_min as i64,
            es["dmin"].as_i64().unwrap(),
            "{}",
            c("dmin")
        );
        assert_eq!(
            sig.digital_max as i64,
            es["dmax"].as_i64().unwrap(),
            "{}",
            c("dmax")
        );

        let d = &es["data"];
        let dig = r.read_signal_digital(i).unwrap();
        let phys = r.read_signal_physical(i).unwrap();
        let n = dig.len();
        assert_eq!(n as i64, d["n"].as_i64().unwrap(), "{}", c("sample count"));
        assert_eq!(
            crc32(dig.iter().flat_map(|v| v.to_le_bytes())) as i64,
            d["crc32"].as_i64().unwrap(),
            "{}",
            c("CRC-32 of the digital samples")
        );
        let sum: i64 = dig.iter().map(|&v| v as i64).sum();
        let sumsq: i64 = dig.iter().map(|&v| (v as i64) * (v as i64)).sum();
        assert_eq!(sum, d["sum"].as_i64().unwrap(), "{}", c("sum"));
        assert_eq!(sumsq, d["sumsq"].as_i64().unwrap(), "{}", c("sum of squares"));
        let edge = ints(&d["first"]).len();
        let as64 = |s: &[i32]| s.iter().map(|&v| v as i64).collect::<Vec<_>>();
        assert_eq!(as64(&dig[..edge]), ints(&d["first"]), "{}", c("first samples"));
        assert_eq!(as64(&dig[n - edge..]), ints(&d["last"]), "{}", c("last samples"));
        let pos: Vec<usize> = ints(&d["pos"]).into_iter().map(|p| p as usize).collect();
        let at: Vec<i64> = pos.iter().map(|&p| dig[p] as i64).collect();
        assert_eq!(at, ints(&d["at"]), "{}", c("samples at fixed positions"));

        // EDFlib computes bitvalue * (offset + dig) with offset = pmax / bitvalue - dmax; we compute
        // (dig - dmin) * bitvalue + pmin. Both are the same line; they differ only by f64 rounding, which is
        // ~1e-13 of the range, so 1e-9 of the range (far below one digital step, 1/65535 or 1/16777215 of the
        // range) is a safe bound that still catches any real conversion error.
        let tol = 1e-9 * (sig.physical_max - sig.physical_min).abs();
        let close = |ours: &[f64], theirs: Vec<f64>, what: &str| {
            assert_eq!(ours.len(), theirs.len(), "{}", c(what));
            for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!((a - b).abs() <= tol, "{}: #{k}: {a} vs {b}", c(what));
            }
        };
        close(&phys[..edge], floats(&d["phys_first"]), "first physical");
        close(&phys[n - edge..], floats(&d["phys_last"]), "last physical");
        let phys_at: Vec<f64> = pos.iter().map(|&p| phys[p]).collect();
        close(&phys_at, floats(&d["phys_at"]), "physical at fixed positions");
        // The sums add n such rounding differences (plus summation order): n × tol bounds them.
        let psum: f64 = phys.iter().sum();
        assert!(
            (psum - f(&d["phys_sum"])).abs() <= n as f64 * tol,
            "{}",
            c("physical sum")
        );
    }

    // Annotations: EDFlib reports onsets in 100 ns after the first sample (truncating further digits), and -1
    // for "no duration".
    let exp_ann = exp["annotations"].as_array().unwrap();
    assert_eq!(
        scan.annotations.len(),
        exp_ann.len(),
        "{}",
        ctx("annotation count")
    );
    for (a, e) in scan.annotations.iter().zip(exp_ann) {
        let e = e.as_array().unwrap();
        let onset_100ns = (a.onset - first) * 1e7;
        assert!(
            (onset_100ns - f(&e[0])).abs() <= 1.0,
            "{}: {} vs {}",
            ctx("annotation onset"),
            onset_100ns,
            e[0]
        );
        match a.duration {
            None => assert_eq!(f(&e[1]), -1.0, "{}", ctx("annotation without duration")),
            Some(d) => assert!((d - f(&e[1])).abs() <= 1e-7, "{}", ctx("annotation duration")),
        }
        assert_eq!(a.text, e[2].as_str().unwrap(), "{}", ctx("annotation text"));
        assert!(a.record < r.num_records());
    }
}

#[test]
fn pyedflib_fixtures_read_as_pyedflib_reads_them() {
    let exp = expected();
    let files = exp["files"].as_object().unwrap();
    assert_eq!(files.len(), 8, "every pyedflib data file has an expectation");
    for (name, e) in files {
        let path = data_dir().join(name);
        if let Some(msg) = e.get("pyedflib_error") {
            let err = EdfReader::open(&path).and_then(|mut r| r.scan_annotations().map(|_| ()));
            assert!(
                err.is_err(),
                "{name}: pyedflib refused it ({msg}), we must give an error"
            );
            continue;
        }
        check_file(name, &path, e);
    }
}

#[test]
fn broken_files_give_clear_errors_or_open_as_specified() {
    let exp = expected();
    let broken = exp["broken"].as_object().unwrap();
    assert!(broken.len() >= 20);
    for (name, e) in broken {
        let path = data_dir().join("broken").join(name);
        let want = &e["expect"];
        let opened = EdfReader::open(&path);
        if want.get("ok").is_some() {
            let mut r = opened.unwrap_or_else(|err| panic!("{name} must open: {err}"));
            assert_eq!(
                r.num_records() as i64,
                want["records"].as_i64().unwrap(),
                "{name}"
            );
            // Every complete record's samples are readable.
            for i in r.header().data_signals().collect::<Vec<_>>() {
                let n = r.read_signal_digital(i).unwrap().len();
                assert_eq!(
                    n as u64,
                    r.num_records() * r.header().signals[i].samples_per_record as u64
                );
            }
            match want.get("annotations_error") {
                Some(ae) => match r.scan_annotations() {
                    Err(EdfError::Tal {
                        record,
                        location,
                        reason,
                    }) => {
                        assert_eq!(record as i64, ae["record"].as_i64().unwrap(), "{name}: {reason}");
                        assert_eq!(
                            location.offset as i64,
                            ae["offset"].as_i64().unwrap(),
                            "{name}: {reason}"
                        );
                    }
                    other => panic!("{name}: expected a TAL error, got {other:?}"),
                },
                None => {
                    r.scan_annotations().unwrap_or_else(|err| panic!("{name}: {err}"));
                }
            }
            if name == "valid.edf" {
                check_file(name, &path, &e["described"]);
            }
            continue;
        }
        let err = opened.err().unwrap_or_else(|| panic!("{name} must be refused"));
        let msg = err.to_string();
        if let Some(field_name) = want.get("error_field").and_then(Value::as_str) {
            let EdfError::Field { field, location, .. } = &err else {
                panic!("{name}: expected an error naming `{field_name}`, got {msg}");
            };
            assert_eq!(*field, field_name, "{name}: {msg}");
            if let Some(off) = want.get("offset").and_then(Value::as_i64) {
                assert_eq!(location.offset as i64, off, "{name}: {msg}");
            }
            if let Some(sig) = want.get("signal").and_then(Value::as_i64) {
                assert_eq!(location.signal, Some(sig as usize), "{name}: {msg}");
            }
            assert!(
                msg.contains(field_name),
                "{name}: the message names the field: {msg}"
            );
        } else {
            assert!(
                matches!(err, EdfError::Truncated { .. }),
                "{name}: expected Truncated, got {msg}"
            );
        }
    }
}

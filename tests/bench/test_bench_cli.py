"""Fast end-to-end checks of the benchmark command line (``python -m bench``) and bench.common.

No timed assertions: only that the CLI runs in --quick mode, prints its
tables, writes parseable JSON and a PNG, and reports a missing GPU with the
reason.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import backend
from bench import cli, common

QUICK = ["activations", "--quick", "--quiet", "--sizes", "2^10,4096", "--activations", "sigmoid,softsign,relu,rrelu"]


# --------------------------------------------------------------------------- #
# bench.common
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "text, expected",
    [
        ("65536,1048576", [65536, 1048576]),
        ("2^16, 2**20", [2**16, 2**20]),
        ("1<<10 1e3", [1024, 1000]),
        ("2^10,1024", [1024]),
        ([8, 16], [8, 16]),
    ],
)
def test_parse_sizes_forms(text, expected):
    assert common.parse_sizes(text) == expected


@pytest.mark.parametrize("text", ["0", "-4", "2^x", "abc", "1.5", ""])
def test_parse_sizes_rejects(text):
    with pytest.raises(ValueError, match="--sizes: expected"):
        common.parse_sizes(text)


def test_format_size_and_table():
    assert common.format_size(2**24) == "2^24"
    assert common.format_size(1000) == "1,000"
    table = common.format_table(
        [{"name": "relu", "ms": 1.23456, "note": None}, {"name": "sigmoid", "ms": 10.0, "note": "x"}],
        [("name", "activation"), ("ms", "ms", ".2f"), "note"],
    )
    lines = table.splitlines()
    assert lines[0].split() == ["activation", "ms", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["relu", "1.23", "-"]
    assert lines[3].split() == ["sigmoid", "10.00", "x"]
    # numbers right-aligned: both ms cells end in the same column
    assert lines[2].index("1.23") + 4 == lines[3].index("10.00") + 5


def test_time_function_counts_calls_and_syncs():
    calls, syncs = [], []
    result = common.time_function(lambda: calls.append(1), repeat=4, warmup=3, sync=lambda: syncs.append(1))
    assert len(calls) == 7
    assert len(syncs) == 5  # once after the warm-up, once per timed call
    assert set(result) == {"median", "min", "max", "iqr", "mean", "times"}
    assert len(result["times"]) == 4
    assert result["min"] <= result["median"] <= result["max"]
    with pytest.raises(ValueError, match="repeat: expected an int >= 1, got 0"):
        common.time_function(lambda: None, repeat=0)


def test_summarize_times_single_value():
    result = common.summarize_times([0.5])
    assert result["median"] == 0.5 and result["iqr"] == 0.0


@pytest.mark.skipif(backend.has_gpu(), reason="checks the no-GPU error path")
def test_time_gpu_function_without_gpu_says_why():
    with pytest.raises(RuntimeError, match="GPU timing unavailable"):
        common.time_gpu_function(lambda: None)
    available, reason = common.device_status("gpu")
    assert available is False and reason


def test_resolve_devices():
    devices = common.resolve_devices(None)
    assert [d[0] for d in devices] == ["cpu", "gpu"]
    assert devices[0][1:] == (True, None)
    assert common.resolve_devices("cpu") == [("cpu", True, None)]
    with pytest.raises(ValueError, match="--device: expected cpu, gpu or all, got 'tpu'"):
        common.resolve_devices("tpu")


def test_write_json_atomic(tmp_path):
    path = tmp_path / "sub" / "out.json"
    common.write_json(path, {"a": np.float32(1.5), "b": [np.int64(2)], "nan": math.nan, "arr": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [2], "nan": None, "arr": [0, 1]}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary file left


def test_copy_and_matmul_rooflines_cpu():
    copy = common.copy_roofline(4096 * 4, "float32", "cpu", repeat=3, warmup=1)
    assert copy["elements"] == 4096 and copy["nbytes"] == 16384
    assert copy["gbps"] > 0 and copy["method"] in copy["candidates"]
    assert copy["gbps"] == max(c["gbps"] for c in copy["candidates"].values())
    mm = common.matmul_roofline("float64", "cpu", n=64, repeat=2, warmup=1)
    assert mm["gflops"] > 0 and mm["n"] == 64 and mm["dtype"] == "float64"


def test_environment_info_keys():
    info = common.environment_info()
    for key in ("python", "numpy", "numba", "numba_threads", "cupy", "torch", "cpu_model", "cpu_count", "gpu", "date"):
        assert key in info
    assert "hostname" not in json.dumps(info).lower()
    if not backend.has_gpu():
        assert info["gpu"] == {"available": False, "reason": backend.unavailable_reason()}
    assert "GPU:" in common.format_environment(info)


# --------------------------------------------------------------------------- #
# bench.cli
# --------------------------------------------------------------------------- #
def test_cli_help_lists_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("activations", "kernels", "training"):
        assert name in out


def test_cli_requires_a_command(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_cli_missing_module_breaks_only_its_command(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "nothing", ("bench.does_not_exist", "a command without a module"))
    assert cli.main(["nothing"]) == 2
    err = capsys.readouterr().err
    assert "nothing: command unavailable: module bench.does_not_exist does not exist yet" in err
    assert cli.main(["activations", "--help"]) == 0
    assert "--compare" in capsys.readouterr().out


def test_cli_module_without_interface(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "common", ("bench.common", "not a command module"))
    assert cli.main(["common"]) == 2
    assert "module bench.common lacks add_arguments, run()" in capsys.readouterr().err


def test_activations_bad_arguments(capsys):
    assert cli.main(["activations", "--sizes", "2^x"]) == 2
    assert "--sizes: expected positive element counts" in capsys.readouterr().err
    assert cli.main(["activations", "--compare", "jax"]) == 2
    assert "expected a comma list of numpy, torch" in capsys.readouterr().err
    assert cli.main(["activations", "--quick", "--activations", "swishy"]) == 2
    assert "unknown activation or family 'swishy'" in capsys.readouterr().err


def test_select_activations_families():
    import kernels.activations as kact
    from bench.activations import select_activations

    assert select_activations(None) == list(kact.ACTIVATIONS)
    rect = select_activations("rectifier")
    assert rect == [n for n in kact.ACTIVATIONS if n in kact.FAMILIES["rectifier"]]
    both = select_activations("relu,sigmoidal")
    assert set(both) == set(kact.FAMILIES["sigmoidal"]) | {"relu"}


def test_activations_quick_end_to_end(tmp_path, capsys):
    json_path = tmp_path / "act.json"
    png_path = tmp_path / "act.png"
    status = cli.main(QUICK + ["--device", "all", "--json", str(json_path), "--plot", str(png_path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "== sigmoidal ==" in out and "== rectifier ==" in out
    assert "copy roofline cpu 2^10 float32" in out
    assert "Book 7.6" in out and "softsign forward" in out and "softsign backward" in out
    assert "fwd ms" in out and "%copy f/b" in out and "vs book f/b" in out

    payload = json.loads(json_path.read_text())
    assert set(payload) >= {"environment", "settings", "devices", "rooflines", "rows", "answer", "first_calls",
                            "targets"}
    assert payload["settings"]["sizes"] == [1024, 4096]
    assert payload["settings"]["activations"] == ["sigmoid", "softsign", "relu", "rrelu"]
    cpu_rows = [r for r in payload["rows"] if r["device"] == "cpu"]
    assert len(cpu_rows) == 8
    for row in cpu_rows:
        assert row["available"] is True and row["dtype"] == "float32"
        for direction in ("forward", "backward"):
            block = row[direction]
            assert block["median_s"] > 0 and block["gbps"] > 0 and block["roofline_pct"] > 0
            assert block["bytes"] == block["arrays"] * row["size"] * 4
        assert row["forward"]["arrays"] == (3 if row["activation"] == "rrelu" else 2)
        assert row["book"]["forward"]["speedup"] > 0
        assert row["book"]["forward"]["max_abs_diff"] < 1e-5
        assert row["book"]["backward"]["max_abs_diff"] < 1e-5
    assert [c["elements"] for c in payload["rooflines"]["copy"]] == [1024, 4096]
    assert len(payload["first_calls"]) == 4

    gpu_rows = [r for r in payload["rows"] if r["device"] == "gpu"]
    if not backend.has_gpu():
        assert payload["devices"]["gpu"] == {"available": False, "reason": backend.unavailable_reason()}
        assert len(gpu_rows) == 8
        assert all(r["available"] is False and r["reason"] == backend.unavailable_reason() for r in gpu_rows)
        assert out.count(backend.unavailable_reason()) == 1  # the reason is said once
        assert "GPU: not measured (unavailable: see the GPU line above)" in out
    else:
        assert all(r["available"] and r["gpu_speedup"]["forward"] > 0 for r in gpu_rows)

    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(backend.has_gpu(), reason="checks the no-GPU path")
def test_activations_gpu_only_without_gpu(capsys):
    assert cli.main(QUICK + ["--device", "gpu"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count(backend.unavailable_reason()) == 1
    assert "nothing measured" in captured.err


def test_compare_torch_skipped_or_measured(tmp_path, capsys):
    json_path = tmp_path / "t.json"
    args = ["activations", "--quick", "--quiet", "--sizes", "2^10", "--activations", "relu,softsign",
            "--device", "cpu", "--compare", "numpy,torch", "--json", str(json_path)]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    rows = json.loads(json_path.read_text())["rows"]
    if common.torch_or_none() is None:
        assert "PyTorch comparison skipped" in out
        assert all("torch" not in r for r in rows)
    else:
        assert "torch/ours f/b" in out
        for row in rows:
            assert row["torch"]["forward"]["ratio"] > 0
            assert row["torch"]["forward"]["max_abs_diff"] < 1e-5
            assert row["torch"]["backward"]["max_abs_diff"] < 1e-5


def _row(name, family, device, fwd, bwd, size=2**24):
    def block(t):
        return {"median_s": t, "roofline_pct": 50.0, "timing": {"iqr": 0.05 * t}}

    return {"activation": name, "family": family, "device": device, "available": True, "size": size,
            "dtype": "float32", "forward": block(fwd), "backward": block(bwd)}


def test_answer_is_computed_from_measurements():
    from bench.activations import answer_book_question

    rows = [
        _row("sigmoid", "sigmoidal", "cpu", 4.0, 2.0),
        _row("tanh", "sigmoidal", "cpu", 3.0, 2.0),
        _row("softsign", "sigmoidal", "cpu", 1.5, 3.0),
        _row("sigmoid", "sigmoidal", "gpu", 0.11, 0.15),
        _row("tanh", "sigmoidal", "gpu", 0.10, 0.15),
        _row("softsign", "sigmoidal", "gpu", 0.10, 0.16),
        _row("softsign", "sigmoidal", "cpu", 9.0, 9.0, size=2**10),  # smaller size: ignored
    ]
    text = "\n".join(answer_book_question(rows))
    assert "CPU, 2^24 float32:" in text and "GPU, 2^24 float32:" in text
    assert "forward  cheapest to dearest (time / fastest): softsign 1x, tanh 2x, sigmoid 2.7x" in text
    assert "softsign forward: 2.00x faster than tanh; 2.67x faster than sigmoid (rank 1 of 3)" in text
    assert "softsign backward: 1.50x slower than tanh; 1.50x slower than sigmoid (rank 3 of 3)" in text
    # GPU 0.10 vs 0.10: a tie, never "1.00x faster ... (a tie)"
    assert "softsign forward: a tie with tanh (times 0% apart, within the run's spread of 5%)" in text
    assert "faster than tanh (" not in text and "slower than tanh (" not in text
    assert "CPU -> GPU forward: rank correlation" in text
    assert "memory traffic" in text  # GPU spread 1.1x < 1.5 <= CPU spread 2.7x


def test_python_dash_m_bench_help():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "activations" in done.stdout and "camadas-bench" in done.stdout


def _full_row(name, family, device, fwd, bwd, copy_gbps):
    n = 2**24

    def block(t, arrays):
        nbytes = arrays * n * 4
        gbps = nbytes / t / 1e9
        return {"median_s": t, "timing": {"iqr": 0.0}, "bytes": nbytes, "arrays": arrays,
                "elements_per_s": n / t, "gbps": gbps, "roofline_pct": 100 * gbps / copy_gbps}

    return {"activation": name, "family": family, "device": device, "available": True, "size": n,
            "dtype": "float32", "forward": block(fwd, 2), "backward": block(bwd, 3), "copy_gbps": copy_gbps}


def test_gpu_report_paths_with_synthetic_rows(tmp_path):
    """The GPU columns, speedups, targets and plot, exercised without a GPU."""
    from bench.activations import check_targets, column_legend, plot_results, table_columns, table_rows
    from bench.timing import add_gpu_speedups

    rows = [
        _full_row("relu", "rectifier", "cpu", 6e-3, 8e-3, 40.0),
        _full_row("relu", "rectifier", "gpu", 1e-4, 1.6e-4, 1500.0),
        _full_row("sigmoid", "sigmoidal", "cpu", 8e-3, 9e-3, 40.0),
        _full_row("sigmoid", "sigmoidal", "gpu", 1.1e-4, 1.6e-4, 1500.0),
    ]
    add_gpu_speedups(rows, key=lambda r: (r["activation"], r["size"], r["dtype"]),
                     seconds=lambda r: {d: r[d]["median_s"] for d in ("forward", "backward")})
    assert rows[1]["gpu_speedup"]["forward"] == pytest.approx(60.0)
    cells = table_rows(rows, compare=())
    assert cells[1]["gpu"] == "60.0x/50.0x"
    columns = table_columns(cells)
    assert ("gpu", "GPU/CPU f/b") in columns
    assert ("book", "vs book f/b") not in columns and "vs book" not in column_legend(columns)
    assert "GPU/CPU: our CPU time / our GPU time" in column_legend(columns)
    targets, lines = check_targets(rows)
    assert targets["gpu"]["missed"] == []  # 81-89 % of copy, 50-73x the CPU
    assert targets["cpu"]["missed"] == ["relu (within 1.5x of copy: 55.9)"]  # 2 * 2^24 * 4 B / 6 ms / 40 GB/s
    assert lines[1] == "GPU at 2^24 float32: 4/4 met"
    png = tmp_path / "gpu.png"
    plot_results(rows, [], png, title="synthetic")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_targets_are_not_judged_off_their_size():
    from bench.activations import check_targets

    small = [_full_row("relu", "rectifier", "cpu", 6e-3, 8e-3, 40.0)]
    small[0]["size"] = 2**14
    targets, lines = check_targets(small)
    assert targets["cpu"] == {"at": "2^14 float32", "judged": False}
    assert lines == ["CPU: not judged: the targets are stated for 2^24 float32 elements; this run's largest size "
                     "is 2^14 float32."]


def test_quick_runs_judge_no_target_and_print_no_internal_words(capsys):
    assert cli.main(QUICK + ["--device", "cpu", "--compare", "none"]) == 0
    out = capsys.readouterr().out
    assert "not judged" in out and "met" not in out.split("Targets", 1)[1]
    assert "Issue" not in out
    assert "vs book" not in out and "torch/ours" not in out  # no column, no legend


# --------------------------------------------------------------------------- #
# Bad options are usage errors, before any run
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("argv, message", [
    (["training", "--optimizer", "nope"], "--optimizer: expected one of sgd, momentum"),
    (["training", "--seed", "-1"], "--seed: expected an integer between 0 and 2^32 - 1, got -1"),
    (["training", "--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    (["training", "--learning-rate", "nan"], "--learning-rate: expected a finite number > 0"),
    (["activations", "--sizes", "2^70"], "--sizes: expected at most 2^34 elements per size"),
    (["activations", "--warmup", "-1"], "--warmup: expected an integer >= 1, got -1"),
    (["activations", "--seed", "-1"], "--seed: expected an integer between 0 and 2^32 - 1"),
    (["activations", "--repeat", "0"], "--repeat: expected an integer >= 1, got 0"),
    (["kernels", "--warmup", "-3"], "--warmup: expected an integer >= 1, got -3"),
    (["kernels", "--retries", "-1"], "--retries: expected an integer >= 0, got -1"),
    (["kernels", "--min-time", "0"], "--min-time: expected a finite number > 0"),
    (["kernels", "--ops", "conv2d,nope"], "--ops: expected names from conv2d, max_pool2d"),
    (["kernels", "--threads", "0"], "--threads: expected an integer >= 1, got 0"),
])
def test_bad_option_values_are_usage_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command, option", [
    ("activations", "--json"), ("activations", "--plot"), ("kernels", "--json"), ("training", "--json"),
    ("training", "--plot"),
])
def test_unwritable_output_paths_fail_before_the_run(tmp_path, capsys, command, option):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    target = blocker / "out.json"  # its parent is a file: cannot be written, whoever runs it
    assert cli.main([command, option, str(target), "--quick"]) == 2
    err = capsys.readouterr().err
    assert f"{option}:" in err and "is not a directory" in err


def test_output_paths_accept_new_directories_and_refuse_directories_as_files(tmp_path):
    import argparse

    from bench import options

    assert options.output_file(str(tmp_path / "new" / "deeper" / "x.json")).endswith("x.json")
    assert options.output_dir(str(tmp_path / "plots")).endswith("plots")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a file path, got the directory"):
        options.output_file(str(tmp_path))
    (tmp_path / "f").write_text("")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a directory, got the file"):
        options.output_dir(str(tmp_path / "f"))


def test_one_timer_policy():
    from bench.timing import Timer

    calls = []
    result = Timer(repeat=4, warmup=3)(lambda: calls.append(1), "cpu")
    assert len(calls) == 3 + 4 and len(result["times"]) == 4
    auto = Timer(repeat=None, warmup=1, min_time=1.0, bounds=(5, 9))
    assert auto.repeat_for(1.0) == 5 and auto.repeat_for(0.01) == 9 and auto.repeat_for(0.15) == 7
    with pytest.raises(ValueError, match="warmup: expected an int >= 1, got 0"):
        Timer(warmup=0)


def test_kernels_report_with_synthetic_gpu_rows():
    """The cuDNN and PyTorch columns and the GPU targets of ``bench kernels``, exercised without a GPU."""
    from bench import kernels as kb
    from bench.timing import add_gpu_speedups

    def row(device, ours, cudnn=None, torch=None):
        r = {"op": "conv2d", "shape": [64, 32, 32, 32], "filters": 64, "device": device, "dtype": "float32",
             "direction": "forward+backward",
             "ours": {"median_s": ours, "timing": {"iqr": 0.0}, "gflops": 100.0, "roofline_pct": 50.0}}
        if torch is not None:
            r["torch"] = {"median_s": torch, "ours_over_torch": ours / torch}
        if cudnn is not None:
            r["cudnn"] = {"median_s": cudnn, "ours_over_cudnn": ours / cudnn, "served": {"conv2d_forward": 1}}
            if torch is not None:
                r["cudnn"]["cudnn_over_torch"] = cudnn / torch
        return r

    rows = [row("cpu", 0.030, torch=0.025), row("gpu", 0.0012, cudnn=0.0010, torch=0.0009)]
    add_gpu_speedups(rows, key=lambda r: (r["op"], tuple(r["shape"]), r["direction"]),
                     seconds=lambda r: r["ours"]["median_s"])
    cells = kb.table_rows(rows)
    columns = kb.table_columns(cells)
    headers = [h for _, h in columns]
    assert "cudnn ms" in headers and "ours/cudnn" in headers and "GPU/CPU" in headers
    assert "book ms" not in headers and "book ms" not in kb.column_legend(columns, rounds=3, book_images=1)
    assert cells[1]["vs_cudnn"] == "1.20" and cells[1]["gpu"] == "25.0x"
    targets, lines = kb.check_results(rows, ["cpu", "gpu"])
    gpu = {t["target"]: t["met"] for t in targets["gpu"]}
    assert gpu == {"<= 1.5x PyTorch": True, "with cuDNN <= 1.1x PyTorch": False, ">= 20x our CPU": True}

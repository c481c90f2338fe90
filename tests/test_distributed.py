"""The training driver under tf.distribute, each case in its own process."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

import toy_gan
from conftest import HELPERS, REPO

SCRIPT = str(HELPERS / "distributed_run.py")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HELPERS), str(REPO)]), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def _weights(run_dir):
    model = toy_gan.build_generator()
    model.load_weights(run_dir / "generator.weights.h5")
    return model.get_weights()


def test_mirrored_two_replicas_match_single_device(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "mirrored", str(tmp_path)], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((tmp_path / "mirrored" / "config.json").read_text())
    assert record["replicas"] == 2
    # SGD makes the update proportional to the gradient: a missing 1/replicas would double it.
    for a, b in zip(_weights(tmp_path / "mirrored"), _weights(tmp_path / "single")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_two_processes_on_localhost(tmp_path):
    ports = _free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen([sys.executable, SCRIPT, "multiworker", str(tmp_path / f"w{index}")],
                                      env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        assert "OK" in out
    chief = tmp_path / "w0" / "run"
    assert (chief / "generator.weights.h5").is_file()
    assert json.loads((chief / "config.json").read_text())["replicas"] == 2
    assert not (tmp_path / "w1" / "run" / "generator.weights.h5").exists()  # only the chief writes

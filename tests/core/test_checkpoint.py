"""Checkpoints: exact round trip, and every broken file gives the documented CheckpointError."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from csknet_studio.core.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_state_dict_checked,
    read_checkpoint,
    save_checkpoint,
    weights_hash,
)
from csknet_studio.core.classes import PST900
from csknet_studio.core.errors import (
    CheckpointError,
    CheckpointVersionError,
    CorruptCheckpointError,
    NotACheckpointError,
    WeightsMismatchError,
)
from csknet_studio.core.model import create_model
from csknet_studio.core.state_dict import clean_state_dict


@pytest.fixture
def model():
    m = create_model("csknet-tiny", num_classes=5)
    # make running stats and gammas non-default so the round trip proves they travel
    m.train()
    with torch.no_grad():
        m(torch.randn(2, 3, 32, 32), torch.randn(2, 1, 32, 32))
    return m.eval()


@pytest.fixture
def ckpt(tmp_path: Path, model) -> Path:
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, scheme=PST900, metrics={"val": {"both": {"miou": 0.5}}},
                    train_config={"seed": 3}, extra={"note": "x"})
    return path


def test_round_trip_is_exact(ckpt: Path, model):
    loaded = load_checkpoint(ckpt)
    a, b = model.state_dict(), loaded.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert loaded.model.config == model.config
    assert loaded.scheme == PST900 and loaded.scheme.palette == PST900.palette
    assert loaded.metrics == {"val": {"both": {"miou": 0.5}}}
    assert loaded.config == {"seed": 3}
    assert loaded.meta["extra"] == {"note": "x"} and loaded.meta["format_version"] == FORMAT_VERSION
    assert loaded.weights_hash == weights_hash(model.state_dict())
    assert not loaded.model.training
    eo, ir = torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        for args in ((eo, ir), (None, ir), (eo, None)):
            assert torch.equal(model(*args).logits, loaded.model(*args).logits)


def test_weights_hash_sees_one_changed_value(model):
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    h = weights_hash(sd)
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key].view(-1)[0] += 1e-6
    assert weights_hash(sd) != h and len(h) == 16


def test_prefixes_are_stripped(model, tmp_path):
    wrapped = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    assert clean_state_dict(wrapped).keys() == model.state_dict().keys()
    other = create_model("csknet-tiny", num_classes=5)
    load_state_dict_checked(other, wrapped)
    assert weights_hash(other.state_dict()) == weights_hash(model.state_dict())


def test_truncated_checkpoint(ckpt: Path):
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated or damaged"):
        load_checkpoint(ckpt)


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        load_checkpoint(p)


def test_damaged_tensor_bytes_are_detected(ckpt: Path, model):
    """Flip bytes inside the largest tensor's storage: the stored hash no longer matches."""
    import zipfile

    with zipfile.ZipFile(ckpt) as z:
        infos = [i for i in z.infolist() if "/data/" in i.filename]
        big = max(infos, key=lambda i: i.file_size)
    data = bytearray(ckpt.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[big.header_offset + 26: big.header_offset + 30])
    offset = big.header_offset + 30 + name_len + extra_len
    for j in range(offset, offset + 16):
        data[j] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError):
        load_checkpoint(ckpt)


def test_wrong_files(tmp_path: Path, model):
    text = tmp_path / "config.toml"
    text.write_text("seed = 1\n")
    with pytest.raises(NotACheckpointError, match="not a torch checkpoint"):
        load_checkpoint(text)
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    with pytest.raises(NotACheckpointError, match="bare state_dict"):
        load_checkpoint(bare)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else", "weights": torch.zeros(2)}, other)
    with pytest.raises(NotACheckpointError):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path: Path, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"format": "csknet-studio-checkpoint", "x": _Evil()}, p)
    with pytest.raises(NotACheckpointError, match="could run code"):
        load_checkpoint(p)
    assert "must never run" not in capsys.readouterr().out


def test_other_format_version(tmp_path: Path, ckpt: Path):
    payload = torch.load(ckpt, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, ckpt)
    with pytest.raises(CheckpointVersionError, match=f"version {FORMAT_VERSION + 1}"):
        load_checkpoint(ckpt)


def test_shape_and_key_mismatch(tmp_path: Path, ckpt: Path, model):
    payload = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in payload["state_dict"].items() if v.ndim == 4)
    payload["state_dict"][key] = torch.zeros(1, 1, 1, 1)
    payload["state_dict"]["extra.weight"] = torch.zeros(3)
    payload.pop("weights_hash")
    payload.pop("meta_hash")  # as a writer without hashes would leave it
    torch.save(payload, ckpt)
    with pytest.raises(WeightsMismatchError) as err:
        load_checkpoint(ckpt)
    assert key in str(err.value) and "extra.weight" in str(err.value)
    with pytest.raises(WeightsMismatchError, match="missing"):
        load_state_dict_checked(model, {k: v for k, v in model.state_dict().items() if "decoder" not in k})


def test_save_is_atomic(tmp_path: Path, ckpt: Path, model, monkeypatch):
    before = ckpt.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(ckpt, model, scheme=PST900)
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    assert read_checkpoint(ckpt)["scheme"]["name"] == "pst900"


@pytest.mark.slow
def test_fuzzed_checkpoints_raise_only_checkpoint_errors(tmp_path: Path, ckpt: Path):
    """Truncations and byte flips anywhere give a CheckpointError (or, rarely, a still-valid file)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    good = ckpt.read_bytes()
    target = tmp_path / "fuzz.pt"

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cut=st.integers(0, len(good) - 1), flips=st.lists(st.integers(0, len(good) - 1), max_size=4),
           truncate=st.booleans())
    def check(cut: int, flips: list[int], truncate: bool):
        data = bytearray(good[:cut] if truncate else good)
        for j in flips:
            if j < len(data):
                data[j] ^= 0x5A
        target.write_bytes(bytes(data))
        try:
            loaded = load_checkpoint(target)
        except CheckpointError:
            return
        # a flip in padding or metadata text can leave a loadable file: then the weights are intact
        assert loaded.weights_hash == weights_hash(loaded.model.state_dict())

    check()


def test_damaged_metadata_is_detected(ckpt: Path):
    payload = torch.load(ckpt, weights_only=True)
    payload["scheme"]["class_names"][1] = "fire_extinguisherX"
    torch.save(payload, ckpt)
    with pytest.raises(CorruptCheckpointError, match="class names"):
        load_checkpoint(ckpt)

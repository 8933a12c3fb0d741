"""Teacher sources: where a distillation step gets the teacher's depth (and features) from.

Every source is called as ``teacher(batch, features=()) -> dict`` with ``depth`` (B x 1 x H x W
metres, no grad, on the batch's device) and, for a live model, the requested named features:

- :class:`ModuleTeacher`: a live ``torch.nn.Module`` (a ``lumde_depth.models`` model or a lumde
  model file), frozen and in eval mode; the only source with features.
- :class:`TorchScriptTeacher` / :class:`OnnxTeacher`: an exported model file; depth only.
- :class:`CachedTeacher`: a folder of predictions written once by :func:`cache_teacher_predictions`,
  keyed by the sample ``name``; depth only. It is only valid for the same frames with the same
  deterministic crop / resize: random crops or flips would misalign the cached depth.

:func:`load_teacher` picks the source for a module, a file or a folder.

Cache layout::

    <dir>/index.json         {"format", "teacher": identity, "kind", "input_size": [H, W], "dtype",
                              "augmentation": what the frames were made under, "files": {name: path}}
    <dir>/depth/<file>.npy   H x W depth in metres, float16 (relative error <= 2^-11) or float32
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

CACHE_FORMAT = "lumde_depth.teacher_cache/1"
CACHE_DTYPES = ("float16", "float32")
KINDS = ("completion", "monocular")


class TeacherError(ValueError):
    """A teacher source cannot give what is asked of it; the message says what to use instead."""


def model_kind(module: Any) -> str:
    """``completion`` when ``forward`` takes (rgb, sparse), ``monocular`` when it takes (rgb)."""
    forward = module.forward if hasattr(module, "forward") else module
    try:
        schema = forward.schema
        count = sum(1 for a in schema.arguments if a.name != "self" and not a.has_default_value())
    except AttributeError:
        params = inspect.signature(forward).parameters.values()
        count = sum(1 for p in params if p.default is p.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    if count not in (1, 2):
        raise TeacherError(f"cannot tell the model kind: forward takes {count} inputs (expected rgb, or rgb and "
                           "sparse)")
    return "completion" if count == 2 else "monocular"


def check_teacher_kind(teacher: "Teacher", student_kind: str) -> None:
    """Refuse a monocular teacher for a completion student: its depth ignores the LiDAR (and a
    self-supervised one is known only up to scale), so it would teach the student to ignore it too.
    A monocular student may learn from either kind."""
    if student_kind == "completion" and teacher.kind == "monocular":
        raise TeacherError(f"the teacher {teacher.identity} is a monocular model (model(rgb)) but the student is a "
                           "completion model (model(rgb, sparse)): a completion student distils from a completion "
                           "teacher (e.g. a trained lspkd_teacher model file); monocular teachers teach monocular "
                           "students (loss method: lumde)")


def run_model(module: Any, batch: Mapping[str, Any], kind: str | None = None) -> Any:
    """``module(rgb, sparse)`` or ``module(rgb)`` according to the model's kind."""
    kind = kind or model_kind(module)
    _check_batch(batch, kind)
    return module(batch["rgb"], batch["sparse"]) if kind == "completion" else module(batch["rgb"])


def probe_batch(size: tuple[int, int], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A one-sample zero batch of ``size`` (H, W), to read the models' feature shapes."""
    h, w = size
    return {"rgb": torch.zeros(1, 3, h, w, device=device), "sparse": torch.zeros(1, 1, h, w, device=device)}


def _check_batch(batch: Mapping[str, Any], kind: str) -> None:
    need = ("rgb", "sparse") if kind == "completion" else ("rgb",)
    missing = [k for k in need if k not in batch]
    if missing:
        raise KeyError(f"a {kind} teacher needs batch keys {list(need)}; missing {missing}")


def _depth_of(output: Any, who: str) -> torch.Tensor:
    """The depth in a model's output (a dict with ``depth``, a tuple whose first item it is, or a tensor)."""
    if isinstance(output, Mapping):
        if "depth" not in output:
            raise TeacherError(f"{who} returned a dict without 'depth' (keys: {sorted(output)})")
        output = output["depth"]
    elif isinstance(output, (tuple, list)):
        output = output[0]
    depth = torch.as_tensor(output)
    if depth.dim() == 3:
        depth = depth.unsqueeze(1)
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise TeacherError(f"{who} depth must be B x 1 x H x W, got {tuple(depth.shape)}")
    return depth.float()


class Teacher:
    """The interface of a teacher source."""

    #: Human-readable identity: what made the predictions (written into caches).
    identity: str = ""
    #: Whether named features (E0..E4, D0..D4) can be asked for.
    provides_features: bool = False
    #: ``completion`` (rgb, sparse) or ``monocular`` (rgb).
    kind: str = "completion"

    def __call__(self, batch: Mapping[str, Any], features: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def check_features(self, features: Sequence[str]) -> None:
        """Raise a :class:`TeacherError` when ``features`` are asked of a depth-only source."""
        if features and not self.provides_features:
            raise TeacherError(
                f"the teacher {self.identity} gives depth only, but features {list(features)} were asked for: "
                "feature distillation (lspkd, prob, att, spkd) needs a live teacher model (a model name or a "
                "lumde model file); with exported or cached teachers use `method: blackbox`")


class ModuleTeacher(Teacher):
    """A live, frozen model in eval mode; gives depth and any named features it returns."""

    provides_features = True

    def __init__(self, module: nn.Module, kind: str | None = None, identity: str | None = None) -> None:
        if kind is not None and kind not in KINDS:
            raise TeacherError(f"teacher kind must be one of {KINDS}, got {kind!r}")
        self.module = module.eval().requires_grad_(False)
        self.kind = kind or model_kind(module)
        self._identity = identity

    @property
    def identity(self) -> str:
        """Given, or architecture + weights digest (hashed on first use: large models take a moment)."""
        if self._identity is None:
            self._identity = _module_identity(self.module)
        return self._identity

    def to(self, device: torch.device | str) -> "ModuleTeacher":
        self.module.to(device)
        return self

    def __call__(self, batch: Mapping[str, Any], features: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        device = batch["rgb"].device
        param = next(self.module.parameters(), None)
        if param is not None and param.device != device:
            self.module.to(device)
        self.module.eval()
        with torch.no_grad():
            out = run_model(self.module, batch, self.kind)
        result = {"depth": _depth_of(out, f"teacher {self.identity}")}
        for name in features:
            if not isinstance(out, Mapping) or name not in out:
                have = sorted(out) if isinstance(out, Mapping) else []
                raise TeacherError(f"the teacher {self.identity} returns no feature '{name}' (it returns {have})")
            result[name] = out[name]
        return result


class TorchScriptTeacher(Teacher):
    """A TorchScript file (``torch.jit.load``); depth only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; it still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(self.path), map_location="cpu").eval()
        self.kind = model_kind(self.module)
        self.identity = f"torchscript:{self.path.name}@{file_digest(self.path)}"

    def __call__(self, batch: Mapping[str, Any], features: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        self.check_features(features)
        self.module.to(batch["rgb"].device)
        with torch.no_grad():
            return {"depth": _depth_of(run_model(self.module, batch, self.kind), self.identity)}


class OnnxTeacher(Teacher):
    """An ONNX file run with onnxruntime; depth only.

    Inputs are matched by name (``rgb``, ``sparse``) or else by position (rgb first); the output
    named ``depth``, or else the first, is the depth. A model exported with batch size 1 is run
    sample by sample; a fixed H x W different from the batch's is an error.
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None) -> None:
        import onnxruntime as ort
        self.path = Path(path)
        available = ort.get_available_providers()
        providers = list(providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                                       if p in available])
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise TeacherError(f"{self.path}: not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) not in (1, 2):
            raise TeacherError(f"{self.path}: expected 1 (rgb) or 2 (rgb, sparse) inputs, got {len(inputs)}")
        self.kind = "completion" if len(inputs) == 2 else "monocular"
        by_name = {i.name: i for i in inputs}
        keys = ("rgb", "sparse")[:len(inputs)]
        self.inputs = ([by_name[k] for k in keys] if all(k in by_name for k in keys) else list(inputs))
        names = [o.name for o in self.session.get_outputs()]
        self.output = "depth" if "depth" in names else names[0]
        self.identity = f"onnx:{self.path.name}@{file_digest(self.path)}"

    def __call__(self, batch: Mapping[str, Any], features: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        self.check_features(features)
        _check_batch(batch, self.kind)
        arrays = [batch[k].detach().cpu().float().numpy() for k in ("rgb", "sparse")[:len(self.inputs)]]
        h, w = arrays[0].shape[-2:]
        for spec in self.inputs:
            fixed = [d for d in spec.shape[-2:] if isinstance(d, int)]
            if len(fixed) == 2 and tuple(fixed) != (h, w):
                raise TeacherError(f"{self.identity} was exported for {fixed[0]}x{fixed[1]} inputs but the batch is "
                                   f"{h}x{w}; export the teacher at the training crop size, or cache its "
                                   "predictions")
        fixed_batch = self.inputs[0].shape[0]
        chunks = ([[a[i:i + 1] for a in arrays] for i in range(arrays[0].shape[0])]
                  if isinstance(fixed_batch, int) else [arrays])
        depth = np.concatenate([self.session.run([self.output], {s.name: a for s, a in zip(self.inputs, chunk)})[0]
                                for chunk in chunks])
        return {"depth": _depth_of(torch.from_numpy(depth), self.identity).to(batch["rgb"].device)}


class CachedTeacher(Teacher):
    """Predictions cached by :func:`cache_teacher_predictions`, looked up by the batch's ``name``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise TeacherError(f"{self.folder}: no index.json, so not a teacher cache; write one with "
                               "`lumde distill --cache-teacher` (cache_teacher_predictions)")
        index = json.loads(index_path.read_text())
        if index.get("format") != CACHE_FORMAT:
            raise TeacherError(f"{index_path}: format {index.get('format')!r} is not {CACHE_FORMAT}")
        self.index = index
        self.files: dict[str, str] = index["files"]
        self.input_size = tuple(index["input_size"])
        self.identity = f"cache:{self.folder.name} of {index['teacher']}"
        self.kind = index.get("kind", "completion")
        #: What the cached frames were made under (None: not recorded, a cache written by hand).
        self.augmentation: dict[str, Any] | None = index.get("augmentation")

    def __len__(self) -> int:
        return len(self.files)

    def __call__(self, batch: Mapping[str, Any], features: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        self.check_features(features)
        names = batch_names(batch)
        h, w = batch["rgb"].shape[-2:]
        if (h, w) != self.input_size:
            raise TeacherError(f"{self.identity} holds {self.input_size[0]}x{self.input_size[1]} predictions but the "
                               f"batch is {h}x{w}; cache with the same crop / resize as training")
        missing = [n for n in names if n not in self.files]
        if missing:
            raise TeacherError(f"frame(s) {missing[:3]} not in the teacher cache {self.folder} ({len(self)} frames); "
                               "re-run `lumde distill --cache-teacher` over this data set and split")
        depth = np.stack([np.load(self.folder / self.files[n]) for n in names])[:, None]
        return {"depth": torch.from_numpy(depth.astype(np.float32)).to(batch["rgb"].device)}


def batch_names(batch: Mapping[str, Any]) -> list[str]:
    """The batch's frame names as a list (a single sample's ``name`` may be a plain string)."""
    if "name" not in batch:
        raise KeyError("the batch has no 'name': cached teacher predictions are keyed by the sample name")
    names = batch["name"]
    return [names] if isinstance(names, str) else [str(n) for n in names]


def file_digest(path: str | Path, length: int = 12) -> str:
    """The first ``length`` hex digits of the file's sha256: identifies a teacher file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _module_identity(module: nn.Module) -> str:
    """Architecture, its arguments and a digest of the weights."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    arch = getattr(module, "arch_name", type(module).__name__)
    kwargs = getattr(module, "arch_kwargs", {})
    return f"{arch}({', '.join(f'{k}={v!r}' for k, v in sorted(kwargs.items()))})@{digest.hexdigest()[:12]}"


def load_teacher(source: Teacher | nn.Module | str | Path) -> Teacher:
    """The teacher source for a :class:`Teacher`, a module, a cache folder or a model file.

    Files: ``.onnx`` -> :class:`OnnxTeacher`; a TorchScript archive -> :class:`TorchScriptTeacher`;
    a lumde model file (``lumde_depth.models.io``) -> :class:`ModuleTeacher` (features available).
    """
    if isinstance(source, Teacher):
        return source
    if isinstance(source, nn.Module):
        return ModuleTeacher(source)
    path = Path(source)
    if path.is_dir():
        return CachedTeacher(path)
    if not path.is_file():
        raise TeacherError(f"teacher not found: {path} (give a model file, an .onnx / TorchScript file or a "
                           "teacher cache folder)")
    if path.suffix.lower() == ".onnx":
        return OnnxTeacher(path)
    from lumde_depth.models.io import is_torchscript, load_model
    if is_torchscript(path):
        return TorchScriptTeacher(path)
    model, meta = load_model(path)
    return ModuleTeacher(model, kind=meta.get("kind"), identity=f"{path.name}@{file_digest(path)}")


def cache_teacher_predictions(teacher: Teacher | nn.Module | str | Path, dataloader: Iterable[Mapping[str, Any]],
                              out_dir: str | Path, dtype: str = "float16", progress: bool = True,
                              augmentation: Mapping[str, Any] | None = None) -> Path:
    """Run ``teacher`` over ``dataloader`` once and write its depth per frame name to ``out_dir``.

    The loader must give the same crops as the distillation run will (no random augmentation);
    ``augmentation`` records what its frames were made under (e.g. ``{"random": False}``), which
    a distillation run checks. Returns the path of the written ``index.json``; read it back with
    :class:`CachedTeacher`.
    """
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype must be one of {CACHE_DTYPES}, got {dtype!r}")
    teacher = load_teacher(teacher)
    if isinstance(teacher, CachedTeacher):
        raise TeacherError("the teacher is already a cache; give the model it was made from")
    out_dir = Path(out_dir)
    files: dict[str, str] = {}
    input_size: list[int] | None = None
    if progress:
        from tqdm import tqdm
        dataloader = tqdm(dataloader, desc="caching teacher", unit="batch")
    for batch in dataloader:
        names = batch_names(batch)
        size = list(batch["rgb"].shape[-2:])
        if input_size is not None and size != input_size:
            raise TeacherError(f"frames of different sizes ({input_size} then {size}): a cache holds one input size")
        input_size = size
        depth = teacher(batch)["depth"]
        if list(depth.shape[-2:]) != size:
            raise TeacherError(f"the teacher {teacher.identity} gives {depth.shape[-2]}x{depth.shape[-1]} depth for "
                               f"{size[0]}x{size[1]} frames; a cache holds depth at the frames' size: give a teacher "
                               "whose depth has its input's size")
        (out_dir / "depth").mkdir(parents=True, exist_ok=True)
        depth = depth[:, 0].cpu().numpy().astype(dtype)
        for name, frame in zip(names, depth):
            if name in files:
                raise TeacherError(f"frame name {name!r} occurs twice; cached predictions are keyed by unique names")
            files[name] = f"depth/{_file_name(name)}.npy"
            np.save(out_dir / files[name], frame)
    if input_size is None:
        raise TeacherError("the data loader gave no batches: nothing to cache")
    index = {"format": CACHE_FORMAT, "teacher": teacher.identity, "kind": teacher.kind, "input_size": input_size,
             "dtype": dtype, "augmentation": None if augmentation is None else dict(augmentation), "files": files}
    index_path = out_dir / "index.json"
    tmp = index_path.with_name("index.json.tmp")
    tmp.write_text(json.dumps(index, indent=1))
    tmp.replace(index_path)
    return index_path


def _file_name(name: str) -> str:
    """A flat, unique file name for a frame name (which may hold '/' and other characters)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[-80:]
    return f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:10]}"

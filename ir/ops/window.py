"""Spatial window geometry shared by the convolution and pooling ops.

A sliding window over the spatial axes (all axes after N and C) is described
by its kernel size, strides, dilations and begin/end pads; :func:`resolve_window`
turns ONNX attributes (``auto_pad``, ``pads``, ``strides``, ``dilations``,
``ceil_mode``) into a :class:`Window` with explicit pads and output sizes, and
:func:`pad_input` / :func:`taps` give the numpy references one strided view of
the padded input per kernel position, so every windowed op is a short loop
over kernel positions of vectorized numpy.

Rules (ONNX, as onnxruntime implements them):

* output size: ``floor((L + pb + pe - K) / s) + 1`` with ``K = (k - 1) * d + 1``
  the dilated kernel extent; with ``ceil_mode`` the division rounds up, but a
  last window that would start in the end padding is dropped.
* ``SAME_UPPER`` / ``SAME_LOWER``: output ``ceil(L / s)``, total padding
  ``max(0, (out - 1) * s + K - L)``, the odd element at the end (UPPER) or the
  beginning (LOWER). ``VALID``: no padding.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .common import require

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Window:
    """A resolved sliding window over ``rank`` spatial axes.

    >>> w = resolve_window((5,), (3,), {"auto_pad": "NOTSET", "pads": (1, 1), "strides": (2,), "dilations": None})
    >>> w.out, w.pads_begin, w.pads_end
    ((3,), (1,), (1,))
    """

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.kernel)

    @property
    def extent(self) -> tuple[int, ...]:
        """The dilated kernel extent ``(k - 1) * d + 1`` per axis."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def pads(self) -> tuple[int, ...]:
        """Pads in ONNX order: all begins, then all ends."""
        return self.pads_begin + self.pads_end


def spatial_ints(value: tuple[int, ...] | None, rank: int, default: int, name: str) -> tuple[int, ...]:
    """An Ints attribute with one entry per spatial axis (``default`` everywhere when absent)."""
    if value is None or len(value) == 0:
        return (default,) * rank
    require(len(value) == rank, f"{name} {value} must have {rank} entries, one per spatial axis")
    return tuple(value)


def strides_and_dilations(attrs: dict, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``strides`` and ``dilations`` attributes, defaults filled and checked positive."""
    strides = spatial_ints(attrs["strides"], rank, 1, "strides")
    dilations = spatial_ints(attrs["dilations"], rank, 1, "dilations")
    require(all(s >= 1 for s in strides), f"strides {strides} must be positive")
    require(all(d >= 1 for d in dilations), f"dilations {dilations} must be positive")
    return strides, dilations


def check_auto_pad(auto_pad: str) -> None:
    """Require ``auto_pad`` to be one of the ONNX values."""
    require(auto_pad in AUTO_PADS, f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")


def explicit_pads(pads: tuple[int, ...] | None, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split an ONNX ``pads`` attribute (begins then ends) into (begins, ends); zeros when absent."""
    pads = spatial_ints(pads, 2 * rank, 0, "pads")
    require(all(p >= 0 for p in pads), f"pads {pads} must be non-negative")
    return pads[:rank], pads[rank:]


def split_same_padding(total: int, auto_pad: str) -> tuple[int, int]:
    """Split ``total`` padding for SAME_UPPER (odd element at the end) or SAME_LOWER (at the beginning)."""
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def output_size(size: int, extent: int, stride: int, pad_begin: int, pad_end: int, ceil_mode: bool, axis: int) -> int:
    """Number of window positions along one axis (see the module docstring)."""
    span = size + pad_begin + pad_end - extent
    require(span >= 0, f"kernel extent {extent} is larger than the padded input size "
                       f"{size + pad_begin + pad_end} on spatial axis {axis}")
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # onnxruntime (like PyTorch) drops a last window that starts in the end padding.
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def resolve_window(spatial: Sequence[int], kernel: Sequence[int], attrs: dict, *, ceil_mode: bool = False) -> Window:
    """Resolve the window of an op over input spatial sizes ``spatial``.

    ``attrs`` holds ``auto_pad``, ``pads``, ``strides`` and ``dilations`` (the
    last three may be None for ONNX's defaults). Raises ShapeError when an
    attribute has the wrong length or the kernel does not fit the padded input.
    """
    rank = len(spatial)
    kernel = tuple(kernel)
    require(len(kernel) == rank, f"kernel_shape {kernel} must have {rank} entries, one per spatial axis")
    require(all(k >= 1 for k in kernel), f"kernel_shape {kernel} must be positive")
    strides, dilations = strides_and_dilations(attrs, rank)
    auto_pad = attrs["auto_pad"]
    check_auto_pad(auto_pad)
    begins, ends = explicit_pads(attrs["pads"], rank)
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    if auto_pad != "NOTSET":
        require(not any(begins + ends), f"pads {attrs['pads']} cannot be combined with auto_pad {auto_pad}")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max(0, (-(-size // s) - 1) * s + ext - size) for size, s, ext in zip(spatial, strides, extent)]
        begins, ends = zip(*(split_same_padding(t, auto_pad) for t in totals))
    out = tuple(output_size(size, ext, s, b, e, ceil_mode, axis)
                for axis, (size, ext, s, b, e) in enumerate(zip(spatial, extent, strides, begins, ends)))
    return Window(kernel, strides, dilations, tuple(begins), tuple(ends), out)


def pad_input(x: np.ndarray, window: Window, value: float = 0) -> np.ndarray:
    """Pad the trailing ``window.rank`` axes of ``x`` so every window position is in bounds.

    The begin pads are the window's; the end is padded just far enough for the
    last window (which with ``ceil_mode`` may reach past the declared end pad).
    """
    spatial = x.shape[x.ndim - window.rank:]
    ends = [max(0, (o - 1) * s + ext - size - b)
            for o, s, ext, size, b in zip(window.out, window.strides, window.extent, spatial, window.pads_begin)]
    widths = [(0, 0)] * (x.ndim - window.rank) + list(zip(window.pads_begin, ends))
    if not any(b or e for b, e in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=value)


def tap_slices(window: Window, offset: Sequence[int]) -> tuple[slice, ...]:
    """Slices of the padded spatial axes read by kernel position ``offset`` at every output position."""
    return tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                 for o, d, n, s in zip(offset, window.dilations, window.out, window.strides))


def taps(padded: np.ndarray, window: Window) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield ``(offset, view)`` per kernel position: the strided view of ``padded``
    (trailing axes of shape ``window.out``) that this kernel position reads."""
    for offset in itertools.product(*(range(k) for k in window.kernel)):
        yield offset, padded[(Ellipsis, *tap_slices(window, offset))]

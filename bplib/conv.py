"""Convolution and pooling (chapter 7): naive loops, then im2col and a matrix product.

Conv2d is cross-correlation, as in PyTorch: x (N, C, H, W), W (F, C, kh, kw),
b (F,), an integer ``stride`` >= 1 and a zero padding ``pad`` >= 0, and
Ho = (H + 2 pad - kh) // stride + 1, Wo = (W + 2 pad - kw) // stride + 1.
Rows and columns that no window reaches (when the stride does not tile the
input) take no part in y and get a zero gradient. Any of N, C and F may be 0.

The naive pair loops over every output entry and is the reference. The fast
pair lays every receptive field out as a column of a matrix (``im2col``), so
that the convolution is one matrix product with the flattened kernel; its
backward is the linear layer's backward followed by ``col2im``,
which adds each column's gradient back onto the pixels it came from. Pooling
(max, average, and LeNet's trainable subsampling) uses the same windows.

Numerics: pooling and subsampling are finite for every finite input (a mean
is summed from scaled entries when the plain sum would overflow); a
convolution is finite as long as its products x W, dy W and dy x and their
sums are below the float maximum.
"""

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bplib._validate import as_float_array, check_cache, check_int, check_shape


class Conv2dNaiveCache(NamedTuple):
    """What conv2d_naive_backward needs: the input, the weights and the geometry."""

    x: np.ndarray
    W: np.ndarray
    stride: int
    pad: int
    made_by = "conv2d_naive_forward"


class Conv2dCache(NamedTuple):
    """What conv2d_backward needs: as the naive cache, plus cols (C kh kw, N Ho Wo), one window per column."""

    x: np.ndarray
    W: np.ndarray
    stride: int
    pad: int
    cols: np.ndarray
    made_by = "conv2d_forward"


class MaxpoolCache(NamedTuple):
    """What maxpool_backward needs: the input, the window, and idx (N, C, Ho, Wo), where each maximum is."""

    x: np.ndarray
    size: int
    stride: int
    idx: np.ndarray
    made_by = "maxpool_forward"


class AvgpoolCache(NamedTuple):
    """What avgpool_backward needs: the input and the window."""

    x: np.ndarray
    size: int
    stride: int
    made_by = "avgpool_forward"


class SubsampleCache(NamedTuple):
    """What subsample_backward needs: the window means m (N, C, Ho, Wo), alpha (C,), the window and x's shape."""

    m: np.ndarray
    alpha: np.ndarray
    size: int
    stride: int
    x_shape: tuple
    made_by = "subsample_forward"


def _out_size(fn, x_shape, kh, kw, stride, pad, name):
    """(Ho, Wo), after checking that the kh x kw window fits in the padded input."""
    Hp, Wp = x_shape[2] + 2 * pad, x_shape[3] + 2 * pad
    if kh < 1 or kw < 1:
        raise ValueError(f"{fn}: the window given by '{name}' must be at least 1 x 1, got {kh} x {kw}")
    if kh > Hp or kw > Wp:
        raise ValueError(f"{fn}: the {kh} x {kw} window given by '{name}' is larger than the padded input 'x', "
                         f"{Hp} x {Wp} (x has shape {x_shape}, pad {pad})")
    return (Hp - kh) // stride + 1, (Wp - kw) // stride + 1


def _conv_args(fn, x, W, b, stride, pad):
    x = as_float_array(fn, "x", x, ndim=4)
    W = as_float_array(fn, "W", W, ndim=4)
    b = as_float_array(fn, "b", b, ndim=1)
    stride = check_int(fn, "stride", stride, minimum=1)
    pad = check_int(fn, "pad", pad, minimum=0)
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"{fn}: argument 'x' has C = {x.shape[1]} channels (shape {x.shape}) but 'W' expects "
                         f"C = {W.shape[1]} (shape {W.shape}, read as (F, C, kh, kw))")
    check_shape(fn, "b", b, (W.shape[0],))
    _out_size(fn, x.shape, W.shape[2], W.shape[3], stride, pad, "W")
    return x, W, b, stride, pad


def _upstream(fn, name, dout, shape):
    dout = as_float_array(fn, name, dout)
    check_shape(fn, name, dout, shape)
    return dout


def _conv_out_shape(fn, x, W, stride, pad):
    """(N, F, Ho, Wo), the shape of y and of dy."""
    return (x.shape[0], W.shape[0]) + _out_size(fn, x.shape, W.shape[2], W.shape[3], stride, pad, "W")


def _pad(x, pad):
    """x with pad zeros added on each side of both image axes: (N, C, H + 2 pad, W + 2 pad); x itself if pad = 0."""
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def conv2d_naive_forward(x, W, b, stride=1, pad=0):
    """y[n, f, i, j] = b[f] + sum_{c,p,q} W[f,c,p,q] xp[n, c, iS + p, jS + q].

    xp is x padded with pad zeros on each side, S the stride. One Python step
    per output entry: slow, plain, the reference.
    Parameters: x (N, C, H, W); W (F, C, kh, kw); b (F,); stride, an
    integer >= 1; pad, the zeros added on each side, an integer >= 0.
    Returns: (y, cache), y (N, F, Ho, Wo). Derived in chapter 7.
    """
    fn = "conv2d_naive_forward"
    x, W, b, stride, pad = _conv_args(fn, x, W, b, stride, pad)
    _, _, kh, kw = W.shape
    xp = _pad(x, pad)
    y_shape = _conv_out_shape(fn, x, W, stride, pad)  # (N, F, Ho, Wo)
    y = np.zeros(y_shape, dtype=np.result_type(x, W, b))
    for n, f, i, j in np.ndindex(y.shape):
        rows = slice(i * stride, i * stride + kh)
        cols = slice(j * stride, j * stride + kw)
        window = xp[n, :, rows, cols]  # (C, kh, kw)
        y[n, f, i, j] = np.sum(window * W[f]) + b[f]
    return y, Conv2dNaiveCache(x, W, stride, pad)


def conv2d_naive_backward(dy, cache):
    """dW[f] += dy[n, f, i, j] window; dxp[window] += dy[n, f, i, j] W[f].

    For every output entry (n, f, i, j), its gradient goes back to what made
    it: times its window of xp (x padded) into dW[f], and times the kernel
    W[f] onto that window of dxp, so overlapping windows add up. dx is dxp
    without its padding; db[f] sums dy[n, f, i, j] over n, i, j.
    Parameters: dy (N, F, Ho, Wo); cache from conv2d_naive_forward.
    Returns: (dx, dW, db), of shapes (N, C, H, W), (F, C, kh, kw), (F,).
    Derived in chapter 7.
    """
    fn = "conv2d_naive_backward"
    cache = check_cache(fn, cache, Conv2dNaiveCache)
    x, W, stride, pad = cache.x, cache.W, cache.stride, cache.pad
    dy = _upstream(fn, "dy", dy, _conv_out_shape(fn, x, W, stride, pad))
    _, _, kh, kw = W.shape
    xp = _pad(x, pad)
    dtype = np.result_type(dy, x, W)
    dxp, dW = np.zeros(xp.shape, dtype), np.zeros(W.shape, dtype)
    for n, f, i, j in np.ndindex(dy.shape):
        rows = slice(i * stride, i * stride + kh)
        cols = slice(j * stride, j * stride + kw)
        dxp[n, :, rows, cols] += dy[n, f, i, j] * W[f]
        dW[f] += dy[n, f, i, j] * xp[n, :, rows, cols]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dW, dy.sum(axis=(0, 2, 3))


def _windows(x, kh, kw, stride):
    """A view of every kh x kw window of x: (N, C, Ho, Wo, kh, kw), window (i, j) starting at (i stride, j stride)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


def _add_windows(dwin, out, stride):
    """out[a, b, i stride + p, j stride + q] += dwin[p, q, a, b, i, j] for every (p, q); returns out.

    The one scatter behind col2im and both pooling backwards; the loop runs over
    the kh kw kernel offsets only, and overlapping windows add up.
    """
    kh, kw, _, _, Ho, Wo = dwin.shape
    for p, q in np.ndindex(kh, kw):
        out[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride] += dwin[p, q]
    return out


def _im2col(x, kh, kw, stride, pad):
    """cols[(c, p, q), (n, i, j)] = xp[n, c, i stride + p, j stride + q]: (C kh kw, N Ho Wo), a window per column."""
    win = _windows(_pad(x, pad), kh, kw, stride)  # (N, C, Ho, Wo, kh, kw), a view
    N, C, Ho, Wo = win.shape[:4]
    # The copy reads along image rows, the order in which x lies in memory.
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * Ho * Wo)


def _col2im(dcols, x_shape, kh, kw, stride, pad):
    """The adjoint of im2col: add each column of dcols (C kh kw, N Ho Wo) back onto its window; (N, C, H, W).

    Columns are in (n, i, j) order, rows in (c, p, q) order: the transpose of im2col's rows.
    """
    N, C, H, Wd = x_shape
    Ho, Wo = _out_size("col2im", x_shape, kh, kw, stride, pad, "kh, kw")
    dwin = dcols.reshape(C, kh, kw, N, Ho, Wo).transpose(1, 2, 0, 3, 4, 5)  # (kh, kw, C, N, Ho, Wo)
    # Accumulate channels first, (C, N, Hp, Wp), in dwin's memory order; then move N to the front.
    dxp = _add_windows(dwin, np.zeros((C, N, H + 2 * pad, Wd + 2 * pad), dcols.dtype), stride)
    return np.ascontiguousarray(dxp[:, :, pad:pad + H, pad:pad + Wd].transpose(1, 0, 2, 3))


def _geometry(fn, name, x_shape, kh, kw, stride, pad):
    kh, kw = check_int(fn, "kh", kh, minimum=1), check_int(fn, "kw", kw, minimum=1)
    stride, pad = check_int(fn, "stride", stride, minimum=1), check_int(fn, "pad", pad, minimum=0)
    return (kh, kw, stride, pad) + _out_size(fn, x_shape, kh, kw, stride, pad, "kh, kw")


def im2col(x, kh, kw, stride=1, pad=0):
    """cols[(n, i, j), (c, p, q)] = xp[n, c, i stride + p, j stride + q]: one row per receptive field.

    Parameters: x (N, C, H, W); kh, kw, the window size; stride >= 1; pad >= 0, integers.
    Returns: cols (N Ho Wo, C kh kw), rows in (n, i, j) order and columns in (c, p, q)
    order, so that conv2d(x, W, b) is cols @ W.reshape(F, -1).T + b, rearranged.
    (conv2d_forward keeps the transpose, one window per column.) Derived in chapter 7.
    """
    x = as_float_array("im2col", "x", x, ndim=4)
    kh, kw, stride, pad, _, _ = _geometry("im2col", "kh, kw", x.shape, kh, kw, stride, pad)
    return _im2col(x, kh, kw, stride, pad).T


def col2im(cols, x_shape, kh, kw, stride=1, pad=0):
    """dx[n, c, h, w] = sum of cols[(n, i, j), (c, p, q)] over i stride + p = h + pad, j stride + q = w + pad.

    The adjoint (transpose) of im2col: it adds every row back onto the pixels its
    window came from, so overlapping windows add up and padding is dropped.
    Parameters: cols (N Ho Wo, C kh kw); x_shape, the tuple (N, C, H, W); kh, kw, stride, pad as in im2col.
    Returns: dx (N, C, H, W). Derived in chapter 7.
    """
    cols = np.asarray(as_float_array("col2im", "cols", cols, ndim=2))  # a plain ndarray, even from np.matrix
    if not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4:
        raise TypeError(f"col2im: argument 'x_shape' must be a tuple (N, C, H, W), got {x_shape!r}")
    x_shape = tuple(check_int("col2im", "x_shape", s, minimum=0) for s in x_shape)
    kh, kw, stride, pad, Ho, Wo = _geometry("col2im", "kh, kw", x_shape, kh, kw, stride, pad)
    N, C = x_shape[:2]
    check_shape("col2im", "cols", cols, (N * Ho * Wo, C * kh * kw))
    return _col2im(cols.T, x_shape, kh, kw, stride, pad)


def conv2d_forward(x, W, b, stride=1, pad=0):
    """y = W.reshape(F, -1) @ cols + b, rearranged to (N, F, Ho, Wo).

    cols (C kh kw, N Ho Wo) holds every receptive field of every image as a
    column (the transpose of im2col), so the convolution is one matrix
    product, the linear layer of chapter 4 written for columns. Equal to
    conv2d_naive_forward.
    Parameters: x (N, C, H, W); W (F, C, kh, kw); b (F,); stride >= 1
    and pad >= 0, integers.
    Returns: (y, cache), y (N, F, Ho, Wo); the cache keeps cols.
    Derived in chapter 7.
    """
    fn = "conv2d_forward"
    x, W, b, stride, pad = _conv_args(fn, x, W, b, stride, pad)
    N, F, Ho, Wo = _conv_out_shape(fn, x, W, stride, pad)
    F, C, kh, kw = W.shape
    cols = _im2col(x, kh, kw, stride, pad)  # (C kh kw, N Ho Wo)
    y = W.reshape(F, C * kh * kw) @ cols  # (F, N Ho Wo), all images at once
    # float64 if any argument is, as in the naive pair; the bias in place
    y = y.astype(np.result_type(y, b), copy=False)
    y += b[:, None]
    y = np.ascontiguousarray(y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3))
    return y, Conv2dCache(x, W, stride, pad, cols)


def conv2d_backward(dy, cache):
    """dW = dY cols^T, db = row sums of dY, dx = col2im(Wm^T dY).

    The linear layer's backward for columns: Wm = W.reshape(F, -1), cols
    (C kh kw, N Ho Wo) the windows as columns, dY the upstream gradient laid
    out as (F, N Ho Wo), its columns in the order of cols; col2im adds each
    column of Wm^T dY back onto its window. Equal to conv2d_naive_backward.
    Parameters: dy (N, F, Ho, Wo); cache from conv2d_forward.
    Returns: (dx, dW, db), of shapes (N, C, H, W), (F, C, kh, kw), (F,).
    Derived in chapter 7.
    """
    fn = "conv2d_backward"
    cache = check_cache(fn, cache, Conv2dCache)
    x, W, stride, pad = cache.x, cache.W, cache.stride, cache.pad
    dy = _upstream(fn, "dy", dy, _conv_out_shape(fn, x, W, stride, pad))
    N, F, Ho, Wo = dy.shape
    F, C, kh, kw = W.shape
    dY = np.ascontiguousarray(dy.transpose(1, 0, 2, 3))
    dY = dY.reshape(F, N * Ho * Wo)  # (F, N Ho Wo)
    dW = (dY @ cache.cols.T).reshape(W.shape)  # dWm = dY cols^T
    dcols = W.reshape(F, C * kh * kw).T @ dY  # (C kh kw, N Ho Wo)
    dx = _col2im(dcols, x.shape, kh, kw, stride, pad)
    return dx, dW, dY.sum(axis=1)


def _pool_args(fn, x, size, stride):
    x = as_float_array(fn, "x", x, ndim=4)
    size = check_int(fn, "size", size, minimum=1)
    stride = check_int(fn, "stride", stride, minimum=1)
    return x, size, stride, _out_size(fn, x.shape, size, size, stride, 0, "size")


def _window_entries(x, size, stride):
    """Entry (p, q) of every window, as size^2 views (N, C, Ho, Wo), k = p size + q.

    Pooling by a loop over the few window offsets reads whole images at a time,
    much faster than reducing over the two short window axes.
    """
    win = _windows(x, size, size, stride)
    return [win[..., p, q] for p, q in np.ndindex(size, size)]


def maxpool_forward(x, size=2, stride=2):
    """y[n, c, i, j] = max over 0 <= p, q < size of x[n, c, i stride + p, j stride + q].

    Parameters: x (N, C, H, W); size, the window side, and stride, integers >= 1
    (stride < size makes windows overlap). No padding: Ho = (H - size) // stride + 1.
    Returns: (y, cache), y (N, C, Ho, Wo); the cache keeps idx (N, C, Ho, Wo), the
    window entry k = p size + q of each maximum (the first one in row-major order at a tie).
    Derived in chapter 7.
    """
    x, size, stride, _ = _pool_args("maxpool_forward", x, size, stride)
    entries = _window_entries(x, size, stride)
    y = entries[0].copy()  # (N, C, Ho, Wo)
    idx = np.zeros(y.shape, dtype=np.min_scalar_type(size * size - 1))
    for k, entry in enumerate(entries[1:], start=1):
        larger = entry > y  # strictly larger: at a tie the earlier entry keeps the maximum
        np.maximum(y, entry, out=y)
        # idx becomes k where larger (idx < k, so k - idx does not wrap around); plain
        # arithmetic, several times faster than a masked copy
        idx += (idx.dtype.type(k) - idx) * larger
    return y, MaxpoolCache(x, size, stride, idx)


def maxpool_backward(dout, cache):
    """dx[n, c, h, w] = sum of dout[n, c, i, j] over the windows (i, j)
    whose argmax is (h, w).

    The max is not differentiable at a tie; there the first maximum of the
    window in row-major order gets the whole gradient. Overlapping windows
    add up. Parameters: dout (N, C, Ho, Wo); cache from maxpool_forward.
    Returns: dx (N, C, H, W). Derived in chapter 7.
    """
    cache = check_cache("maxpool_backward", cache, MaxpoolCache)
    x, size, stride, idx = cache.x, cache.size, cache.stride, cache.idx
    dout = _upstream("maxpool_backward", "dout", dout, idx.shape)
    Ho, Wo = idx.shape[2:]
    dx = np.zeros(x.shape, dout.dtype)
    for k, (p, q) in enumerate(np.ndindex(size, size)):
        # entry (p, q) of every window: a strided view of dx
        entry = dx[:, :, p:p + stride * Ho:stride, q:q + stride * Wo:stride]
        # it receives dout where it was the argmax, else 0
        if stride >= size:  # windows apart: a pixel in one window at most
            np.multiply(dout, idx == k, out=entry)
        else:  # overlapping windows add up
            entry += dout * (idx == k)
    return dx


def _window_mean(x, size, stride):
    """The mean of every size x size window, (N, C, Ho, Wo); finite for every finite x."""
    entries = _window_entries(x, size, stride)
    total = entries[0].copy()
    with np.errstate(over="ignore"):
        for entry in entries[1:]:
            total += entry
    if np.isfinite(total).all():
        return total / (size * size)
    # A partial sum overflowed, though the mean cannot: add the entries already divided.
    return sum(entry / (size * size) for entry in entries)


def avgpool_forward(x, size=2, stride=2):
    """y[n, c, i, j] = (1 / size^2) sum over 0 <= p, q < size of x[n, c, i stride + p, j stride + q].

    Parameters: x (N, C, H, W); size and stride, integers >= 1. No padding.
    Returns: (y, cache), y (N, C, Ho, Wo), finite for every finite x. Derived in chapter 7.
    """
    x, size, stride, _ = _pool_args("avgpool_forward", x, size, stride)
    return _window_mean(x, size, stride), AvgpoolCache(x, size, stride)


def avgpool_backward(dout, cache):
    """dx[n, c, h, w] = (1 / size^2) sum of dout[n, c, i, j] over the windows (i, j) that contain (h, w).

    Parameters: dout (N, C, Ho, Wo); cache from avgpool_forward. Returns: dx (N, C, H, W).
    Derived in chapter 7.
    """
    cache = check_cache("avgpool_backward", cache, AvgpoolCache)
    x, size, stride = cache.x, cache.size, cache.stride
    Ho, Wo = _out_size("avgpool_backward", x.shape, size, size, stride, 0, "size")
    dout = _upstream("avgpool_backward", "dout", dout, x.shape[:2] + (Ho, Wo))
    dwin = np.broadcast_to(dout / (size * size), (size, size) + dout.shape)
    return _add_windows(dwin, np.zeros(x.shape, dwin.dtype), stride)


def _per_channel(fn, name, v, C):
    v = as_float_array(fn, name, v, ndim=1)
    check_shape(fn, name, v, (C,))
    return v[:, None, None]  # (C, 1, 1), to broadcast over (N, C, Ho, Wo)


def subsample_forward(x, alpha, b, size=2, stride=2):
    """z[n, c, i, j] = alpha[c] Sigma[n, c, i, j] + b[c], Sigma the window sums.

    Sigma[n, c, i, j] = sum over 0 <= p, q < size of x[n, c, i stride + p,
    j stride + q]. LeNet's subsampling: each map's window sum times a
    trainable coefficient, plus a trainable bias; LeNet then applies a
    squashing activation, a module of its own here. With alpha = 1 / size^2
    and b = 0 it is average pooling.
    Parameters: x (N, C, H, W); alpha (C,), b (C,); size and stride,
    integers >= 1. No padding.
    Returns: (z, cache), z (N, C, Ho, Wo), finite whenever alpha size^2
    times the window means is. Derived in chapter 7, after LeCun et al.
    (1998).
    """
    fn = "subsample_forward"
    x, size, stride, _ = _pool_args(fn, x, size, stride)
    alpha = _per_channel(fn, "alpha", alpha, x.shape[1])  # (C, 1, 1)
    b = _per_channel(fn, "b", b, x.shape[1])
    # alpha Sigma = (alpha size^2) m, with m the window means: no sum overflows
    m = _window_mean(x, size, stride)  # (N, C, Ho, Wo)
    z = (size * size) * alpha * m + b
    return z, SubsampleCache(m, alpha[:, 0, 0], size, stride, x.shape)


def subsample_backward(dz, cache):
    """dx = alpha dz upsampled; dalpha[c] = sum dz Sigma; db[c] = sum dz.

    Every entry of a window gets alpha times that window's dz (overlapping
    windows add up); the sums run over n, i, j; Sigma, the window sums, are
    size^2 times the window means kept in the cache.
    Parameters: dz (N, C, Ho, Wo); cache from subsample_forward.
    Returns: (dx, dalpha, db), of shapes (N, C, H, W), (C,), (C,).
    Derived in chapter 7.
    """
    cache = check_cache("subsample_backward", cache, SubsampleCache)
    m, alpha, size, stride = cache.m, cache.alpha, cache.size, cache.stride
    dz = _upstream("subsample_backward", "dz", dz, m.shape)
    dsigma = dz * alpha[:, None, None]  # z = alpha Sigma + b, so dz/dSigma = alpha
    # each entry (p, q) of a window gets its window's dsigma: upsampling
    dwin = np.broadcast_to(dsigma, (size, size) + dsigma.shape)
    dx = _add_windows(dwin, np.zeros(cache.x_shape, dsigma.dtype), stride)
    dalpha = (size * size) * np.sum(dz * m, axis=(0, 2, 3))
    return dx, dalpha, dz.sum(axis=(0, 2, 3))

"""Compiled kernels of the rank-sum test (numba), imported on first use by :mod:`._de`.

Kept apart so that importing :mod:`celltwin.eval` does not import numba, and at module level so
numba's on-disk cache (``cache=True``) finds them again in the next process. The kernels take and
return plain arrays; numba infers their types when called.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["code_sums", "rank_sum_chunk", "rank_sum_plan"]

#: Buckets per control value in the grid that locates a group's values among the control's.
BUCKETS = 4


@numba.njit(cache=True, nogil=True)
def grid(fv, lo, scale, n_b):
    """Bucket of ``fv``: monotone in ``fv``, clipped to ``0..n_b - 1`` (overflow-safe)."""
    x = (fv - lo) * scale
    if x >= n_b - 1:
        return n_b - 1
    return int(x) if x > 0 else 0


@numba.njit(cache=True, nogil=True)
def sort_control(vals, start, stop, ctrl, scratch, bucket, bstart):
    """Sort the non-zero values ``vals[start:stop]`` into ``ctrl`` by bucket sort.

    The buckets are a uniform grid over the values' range; the map from value to bucket is
    monotone (rounding never reverses an order), so a value in a lower bucket is smaller. A
    query then only compares with the values of its own bucket (see ``locate``). Returns the
    number of non-zero values, the grid (lowest value, scale, number of buckets) and the sum
    of all values in float64.
    """
    m = 0
    total = 0.0
    lo = np.inf
    hi = -np.inf
    for q in range(start, stop):
        v = vals[q]
        total += v
        if v != 0:  # stored zeros belong to the zero block
            scratch[m] = v
            m += 1
            lo = min(lo, float(v))
            hi = max(hi, float(v))
    n_b = BUCKETS * m + 1
    scale = n_b / (hi - lo) if hi > lo else 0.0
    bstart[: n_b + 1] = 0
    for q in range(m):
        b = grid(float(scratch[q]), lo, scale, n_b)
        bucket[q] = b
        bstart[b + 1] += 1
    for b in range(n_b):
        bstart[b + 1] += bstart[b]
    for q in range(m):  # scatter, using bstart[b] as the fill pointer of bucket b ...
        b = bucket[q]
        ctrl[bstart[b]] = scratch[q]
        bstart[b] += 1
    for b in range(n_b - 1, 0, -1):  # ... then shift it back to the bucket's start
        bstart[b] = bstart[b - 1]
    bstart[0] = 0
    for b in range(n_b):  # sort within buckets: insertion sort for the few values most hold
        first = bstart[b]
        last = bstart[b + 1]
        if last - first > 16:  # crowded (outliers stretch the grid): no quadratic worst case
            ctrl[first:last].sort()
            continue
        for a in range(first + 1, last):
            v = ctrl[a]
            z = a - 1
            while z >= first and ctrl[z] > v:
                ctrl[z + 1] = ctrl[z]
                z -= 1
            ctrl[z + 1] = v
    return m, lo, scale, n_b, total


@numba.njit(cache=True, nogil=True)
def locate(v, ctrl, bstart, lo, scale, n_b):
    """Number of sorted control values below ``v`` and equal to it.

    ``ctrl`` has a spare slot after its values, so the common case -- at most one control value
    in v's bucket -- is answered without branching on the data.
    """
    b = grid(float(v), lo, scale, n_b)
    first = bstart[b]
    last = bstart[b + 1]
    if last - first <= 1:
        one = last - first
        c = ctrl[first]
        return first + (np.int64(c < v) & one), np.int64(c == v) & one
    if last - first <= 8:
        while first < last and ctrl[first] < v:
            first += 1
        below = first
        while first < last and ctrl[first] == v:
            first += 1
        return below, first - below
    top = last
    while first < last:  # a crowded bucket (many ties): binary search
        mid = (first + last) >> 1
        if ctrl[mid] < v:
            first = mid + 1
        else:
            last = mid
    below = first
    last = top
    while first < last:
        mid = (first + last) >> 1
        if ctrl[mid] <= v:
            first = mid + 1
        else:
            last = mid
    return below, first - below


@numba.njit(cache=True, nogil=True)
def value_hash(v, bits):
    """Slot of ``v`` in a table of ``2**bits``: equal values alike, others spread (Fibonacci
    hashing of the exact mantissa and exponent)."""
    x = float(v)
    if not math.isfinite(x):
        return 0
    mantissa, exponent = math.frexp(x)
    key = np.uint64(np.int64(mantissa * 4611686018427387904.0) + exponent)  # mantissa * 2**62
    return np.int64((key * np.uint64(11400714819323198485)) >> np.uint64(64 - bits))


@numba.njit(cache=True, nogil=True)
def rank_sum_plan(indptr, indices, rows, code_start, n_genes, n_chunks):
    """Stored values per gene, ``n_chunks + 1`` gene bounds of about equal work, hash bits.

    ``rows``: the cells, ordered by code: groups 0..P-1, then the control (code P);
    ``rows[code_start[c]:code_start[c + 1]]`` are the cells of code c.
    """
    n_codes = code_start.shape[0] - 1
    n_groups = n_codes - 1
    n_rows = rows.shape[0]
    max_group = 1
    for g in range(n_groups):
        max_group = max(max_group, code_start[g + 1] - code_start[g])
    table_bits = 6  # hash table of a group's distinct values: at most half full
    while (1 << table_bits) < 2 * max_group:
        table_bits += 1
    gene_nnz = np.zeros(n_genes, np.int64)
    for i in range(n_rows):
        for p in range(indptr[rows[i]], indptr[rows[i] + 1]):
            gene_nnz[indices[p]] += 1
    bounds = np.full(n_chunks + 1, n_genes, np.int64)
    bounds[0] = 0
    total_nnz = gene_nnz.sum()
    acc = 0
    c = 1
    for j in range(n_genes):
        acc += gene_nnz[j]
        while c < n_chunks and acc * n_chunks >= c * total_nnz:
            bounds[c] = j + 1
            c += 1
    return gene_nnz, bounds, table_bits


# One function on purpose (130 lines): the per-chunk scratch buffers and the bucketed control
# ranks live across its phases; splitting it into njit calls would pass them around per gene
# block and change nothing a reader gains, at a cost in a hot loop. Chunks run on threads
# (``nogil``) from :func:`celltwin.eval._de.rank_sum_test`: a serial kernel compiles in a few
# seconds, where numba's ``parallel=True`` took several times longer on a first call.
@numba.njit(cache=True, nogil=True)
def rank_sum_chunk(
    indptr, indices, data, rows, code_start, gene_nnz, gene_lo, gene_hi, block, table_bits, out
):
    """U, tie term sum(t^3 - t) and float64 sums of every (group, gene) of genes
    ``gene_lo:gene_hi``, written into ``out = (u, tie, sums)``, walked ``block`` genes at a
    time (see :func:`rank_sum_plan` for ``rows`` and ``code_start``)."""
    u, tie, sums = out
    n_codes = code_start.shape[0] - 1
    n_groups = n_codes - 1
    n_rows = rows.shape[0]
    n_c = code_start[n_codes] - code_start[n_groups]
    table = 1 << table_bits
    # Each row's first stored value in this chunk; the cursors then move block by block.
    cursor = np.empty(n_rows, np.int64)
    for i in range(n_rows):
        lo = np.int64(indptr[rows[i]])
        hi = np.int64(indptr[rows[i] + 1])
        while lo < hi:
            mid = (lo + hi) >> 1
            if indices[mid] < gene_lo:
                lo = mid + 1
            else:
                hi = mid
        cursor[i] = lo
    most = 0
    for g0 in range(gene_lo, gene_hi, block):
        most = max(most, gene_nnz[g0 : min(g0 + block, gene_hi)].sum())
    vals = np.empty(most, data.dtype)
    # vals[cut[c, k]:cut[c + 1, k]]: the stored values of code c for gene g0 + k.
    cut = np.empty((n_codes + 1, block), np.int64)
    fill = np.empty(block, np.int64)
    ctrl = np.empty(n_c + 1, data.dtype)  # a spare slot for locate
    scratch = np.empty(max(n_c, 1), data.dtype)
    bucket = np.empty(max(n_c, 1), np.int64)
    bstart = np.empty(BUCKETS * max(n_c, 1) + 2, np.int64)
    # Copies of a value seen earlier in the group: first looked up by the value's position
    # among the control values, then (another value already took that place) by hash.
    slot_stamp = np.full(max(n_c, 1) + 1, -1, np.int64)
    slot_value = np.empty(max(n_c, 1) + 1, data.dtype)
    slot_count = np.empty(max(n_c, 1) + 1, np.int64)
    seen_stamp = np.full(table, -1, np.int64)
    seen_value = np.empty(table, data.dtype)
    seen_count = np.empty(table, np.int64)
    for g0 in range(gene_lo, gene_hi, block):
        width = min(block, gene_hi - g0)
        g1 = g0 + width
        fill[0] = 0
        for k in range(1, width):
            fill[k] = fill[k - 1] + gene_nnz[g0 + k - 1]
        cut[0, :width] = fill[:width]
        # Gather the block's values gene by gene, code after code.
        for code in range(n_codes):
            for i in range(code_start[code], code_start[code + 1]):
                p = cursor[i]
                end = indptr[rows[i] + 1]
                while p < end and indices[p] < g1:
                    k = indices[p] - g0
                    vals[fill[k]] = data[p]
                    fill[k] += 1
                    p += 1
                cursor[i] = p
            cut[code + 1, :width] = fill[:width]
        for k in range(width):
            j = g0 + k
            m_c, lo_c, scale, n_b, total = sort_control(
                vals, cut[n_groups, k], cut[n_codes, k], ctrl, scratch, bucket, bstart
            )
            sums[n_groups, j] = total
            z_c = float(n_c - m_c)
            neg_c = 0
            while neg_c < m_c and ctrl[neg_c] < 0:
                neg_c += 1
            base = 0.0  # the control's own tie term, zeros apart
            q = 0
            while q < m_c:
                t = 1
                while q + t < m_c and ctrl[q + t] == ctrl[q]:
                    t += 1
                base += float(t) ** 3 - t
                q += t
            for g in range(n_groups):
                # A group's zeros rank above the control's negatives, tie with its zeros.
                n_g = float(code_start[g + 1] - code_start[g])
                first = cut[g, k]
                last = cut[g + 1, k]
                m = 0
                total = 0.0
                u_g = 0.0
                tie_g = 0.0
                stamp = j * n_groups + g  # unique per (gene, group): no stale marks
                for q in range(first, last):
                    v = vals[q]
                    total += v
                    if v == 0:
                        continue
                    m += 1
                    below, equal = locate(v, ctrl, bstart, lo_c, scale, n_b)
                    if slot_stamp[below] != stamp:
                        slot_stamp[below] = stamp
                        slot_value[below] = v
                        slot_count[below] = 1
                        before = 0
                    elif slot_value[below] == v:
                        before = slot_count[below]
                        slot_count[below] = before + 1
                    else:
                        h = value_hash(v, table_bits)
                        while seen_stamp[h] == stamp and seen_value[h] != v:
                            h = (h + 1) & (table - 1)
                        if seen_stamp[h] == stamp:
                            before = seen_count[h]
                            seen_count[h] = before + 1
                        else:
                            seen_stamp[h] = stamp
                            seen_value[h] = v
                            seen_count[h] = 1
                            before = 0
                    # Control zeros sit below a positive value, above a negative one; v
                    # joins a tie block of the control's equal values and its own copies.
                    u_g += below + (z_c if v > 0 else 0.0) + 0.5 * equal
                    t_old = float(equal + before)
                    t_new = t_old + 1.0
                    tie_g += (t_new**3 - t_new) - (t_old**3 - t_old)
                sums[g, j] = total
                z_g = n_g - m
                u[g, j] = u_g + z_g * (0.5 * z_c + neg_c)
                t_zero = z_c + z_g
                tie[g, j] = tie_g + base + t_zero**3 - t_zero


@numba.njit(cache=True, nogil=True)
def code_sums(indptr, indices, data, rows, starts, n_genes, squared):
    """Float64 sums of the rows ``rows[starts[c]:starts[c + 1]]`` of a CSR matrix, per c."""
    n_codes = starts.shape[0] - 1
    out = np.zeros((n_codes, n_genes))
    for c in range(n_codes):
        for i in range(starts[c], starts[c + 1]):
            r = rows[i]
            for p in range(indptr[r], indptr[r + 1]):
                v = float(data[p])
                out[c, indices[p]] += v * v if squared else v
    return out

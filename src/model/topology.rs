//! Who is connected to whom: adjacency matrices and the coupling they make.

/// Connection pattern of the network; `A_ij = 1` means j drives i.
#[derive(Debug, Clone, PartialEq)]
pub enum Topology {
    /// Every neuron drives every other, no self loops.
    AllToAll,
    /// Undirected nearest-neighbour ring: i is driven by i-1 and i+1 (mod n).
    Ring,
    /// No connections.
    None,
    /// An explicit n x n matrix, row i = inputs of neuron i.
    Matrix(Vec<Vec<f64>>),
}

/// The coupling matrix `E = strength * A`, stored so that the per-step sum
/// `drive_i = sum_j E_ij s_j` costs what it must: O(n) for all-to-all (a
/// total minus the self term), O(n^2) only for an explicit dense pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Coupling {
    /// No synaptic input at all.
    Uncoupled,
    /// `E_ij = strength` for i != j.
    AllToAll { strength: f64 },
    /// Row-major n x n matrix.
    Dense { n: usize, e: Vec<f64> },
    /// Compressed sparse rows: the inputs of neuron i are
    /// `cols[starts[i]..starts[i + 1]]` with weights `vals[...]`, in
    /// ascending column order (so sums come out exactly as the dense ones).
    Sparse {
        starts: Vec<usize>,
        cols: Vec<u32>,
        vals: Vec<f64>,
    },
}

impl Coupling {
    /// Builds the coupling of `n` neurons with the given topology and strength.
    pub fn new(topology: &Topology, n: usize, strength: f64) -> Coupling {
        if strength == 0.0 || n < 2 && !matches!(topology, Topology::Matrix(_)) {
            return Coupling::Uncoupled;
        }
        match topology {
            Topology::None => Coupling::Uncoupled,
            Topology::AllToAll => Coupling::AllToAll { strength },
            Topology::Ring | Topology::Matrix(_) => {
                let a = adjacency(topology, n);
                Coupling::compress(n, a.iter().map(|x| x * strength).collect())
            }
        }
    }

    /// The coupling `E = strength * A` of a given adjacency (row-major
    /// n x n); with `normalize` each row is divided by its in-degree (the
    /// row sum of A), so every neuron with inputs receives `strength` in
    /// total.
    pub fn from_adjacency(a: Vec<f64>, n: usize, strength: f64, normalize: bool) -> Coupling {
        if strength == 0.0 || a.iter().all(|&x| x == 0.0) {
            return Coupling::Uncoupled;
        }
        let mut e = a;
        for row in e.chunks_mut(n.max(1)) {
            let degree: f64 = row.iter().sum();
            let scale = if normalize && degree > 0.0 {
                strength / degree
            } else {
                strength
            };
            row.iter_mut().for_each(|x| *x *= scale);
        }
        Coupling::compress(n, e)
    }

    /// Dense storage, or compressed rows when at most a quarter of the
    /// entries are non-zero (a ring, a sparse random graph): the per-step
    /// sum then costs O(edges) instead of O(n^2).
    fn compress(n: usize, e: Vec<f64>) -> Coupling {
        let nonzero = e.iter().filter(|&&x| x != 0.0).count();
        if 4 * nonzero > n * n {
            return Coupling::Dense { n, e };
        }
        let mut starts = Vec::with_capacity(n + 1);
        let (mut cols, mut vals) = (Vec::with_capacity(nonzero), Vec::with_capacity(nonzero));
        starts.push(0);
        for row in e.chunks(n.max(1)) {
            for (j, &x) in row.iter().enumerate() {
                if x != 0.0 {
                    cols.push(j as u32);
                    vals.push(x);
                }
            }
            starts.push(cols.len());
        }
        Coupling::Sparse { starts, cols, vals }
    }

    /// Writes `drive_i = sum_j E_ij s_j` for every i.
    #[inline]
    pub fn drive(&self, s: &[f64], drive: &mut [f64]) {
        match self {
            Coupling::Uncoupled => drive.fill(0.0),
            Coupling::AllToAll { strength } => {
                let total: f64 = s.iter().sum();
                for (d, &si) in drive.iter_mut().zip(s) {
                    *d = strength * (total - si);
                }
            }
            Coupling::Dense { n, e } => {
                for (i, d) in drive.iter_mut().enumerate() {
                    let row = &e[i * n..(i + 1) * n];
                    *d = row.iter().zip(s).map(|(eij, sj)| eij * sj).sum();
                }
            }
            Coupling::Sparse { starts, cols, vals } => {
                for (i, d) in drive.iter_mut().enumerate() {
                    let (a, b) = (starts[i], starts[i + 1]);
                    *d = cols[a..b]
                        .iter()
                        .zip(&vals[a..b])
                        .map(|(&j, eij)| eij * s[j as usize])
                        .sum();
                }
            }
        }
    }
}

impl Coupling {
    /// [`Self::drive`] for consecutive blocks of `n` entries (independent
    /// copies of the network, see `integrate::Lanes`), each block on its
    /// own; the same sums in the same order, so the same bits.
    #[inline(always)]
    pub fn drive_blocks(&self, s: &[f64], drive: &mut [f64], n: usize) {
        match self {
            Coupling::Uncoupled => drive.fill(0.0),
            // Pairs are the common case: with the block size known the
            // compiler unrolls each block into a handful of instructions.
            Coupling::AllToAll { strength } if n == 2 => all_to_all_blocks::<2>(*strength, s, drive),
            Coupling::AllToAll { strength } => {
                for (sb, db) in s.chunks_exact(n).zip(drive.chunks_exact_mut(n)) {
                    let total: f64 = sb.iter().sum();
                    for (d, &si) in db.iter_mut().zip(sb) {
                        *d = strength * (total - si);
                    }
                }
            }
            _ => {
                for (sb, db) in s.chunks_exact(n).zip(drive.chunks_exact_mut(n)) {
                    self.drive(sb, db);
                }
            }
        }
    }

    /// [`Self::diffusive`] for consecutive blocks of `n` entries.
    pub fn diffusive_blocks(&self, x: &[f64], out: &mut [f64], n: usize) {
        for (xb, ob) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            self.diffusive(xb, ob);
        }
    }

    /// Writes the diffusive (gap-junction) current `out_i = sum_j E_ij (x_j - x_i)`
    /// (Dayan & Abbott 2001, §6.3 electrical synapses: `g (V_j - V_i)` per
    /// junction). For a symmetric E the currents sum to zero: no charge is
    /// created or lost.
    #[inline]
    pub fn diffusive(&self, x: &[f64], out: &mut [f64]) {
        match self {
            Coupling::Uncoupled => out.fill(0.0),
            Coupling::AllToAll { strength } => {
                let total: f64 = x.iter().sum();
                let n = x.len() as f64;
                for (o, &xi) in out.iter_mut().zip(x) {
                    *o = strength * (total - n * xi);
                }
            }
            Coupling::Dense { n, e } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let row = &e[i * n..(i + 1) * n];
                    *o = row.iter().zip(x).map(|(eij, xj)| eij * (xj - x[i])).sum();
                }
            }
            Coupling::Sparse { starts, cols, vals } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let (a, b) = (starts[i], starts[i + 1]);
                    *o = cols[a..b]
                        .iter()
                        .zip(&vals[a..b])
                        .map(|(&j, eij)| eij * (x[j as usize] - x[i]))
                        .sum();
                }
            }
        }
    }
}

/// All-to-all drive of blocks of `N` neurons: [`Coupling::drive`]'s sum, in
/// the same order (so the same bits), with `N` known at compile time.
#[inline]
fn all_to_all_blocks<const N: usize>(strength: f64, s: &[f64], drive: &mut [f64]) {
    for (sb, db) in s.chunks_exact(N).zip(drive.chunks_exact_mut(N)) {
        let sb: &[f64; N] = sb.try_into().expect("a block of N");
        let total: f64 = sb.iter().sum();
        for (d, &si) in db.iter_mut().zip(sb) {
            *d = strength * (total - si);
        }
    }
}

/// The adjacency matrix of `topology` on `n` neurons, row-major.
///
/// For [`Topology::Matrix`] the caller (spec validation) has checked the shape.
pub fn adjacency(topology: &Topology, n: usize) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    match topology {
        Topology::None => {}
        Topology::AllToAll => {
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        a[i * n + j] = 1.0;
                    }
                }
            }
        }
        Topology::Ring => {
            for i in 0..n {
                for j in [(i + 1) % n, (i + n - 1) % n] {
                    if j != i {
                        a[i * n + j] = 1.0;
                    }
                }
            }
        }
        Topology::Matrix(rows) => {
            for (i, row) in rows.iter().enumerate() {
                a[i * n..(i + 1) * n].copy_from_slice(row);
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_of_five_has_two_neighbours_each_and_is_symmetric() {
        let a = adjacency(&Topology::Ring, 5);
        for i in 0..5 {
            let row: f64 = a[i * 5..i * 5 + 5].iter().sum();
            assert_eq!(row, 2.0);
            assert_eq!(a[i * 5 + i], 0.0);
            for j in 0..5 {
                assert_eq!(a[i * 5 + j], a[j * 5 + i]);
            }
        }
        // A ring of two is one undirected edge, not a double edge.
        assert_eq!(adjacency(&Topology::Ring, 2), vec![0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn all_to_all_shortcut_equals_the_dense_product() {
        let s = [0.1, 0.7, 0.3, 0.0];
        let fast = Coupling::new(&Topology::AllToAll, 4, 0.25);
        let dense = Coupling::Dense {
            n: 4,
            e: adjacency(&Topology::AllToAll, 4).iter().map(|x| x * 0.25).collect(),
        };
        let (mut d1, mut d2) = ([0.0; 4], [0.0; 4]);
        fast.drive(&s, &mut d1);
        dense.drive(&s, &mut d2);
        for i in 0..4 {
            // Summation order differs: allow a few ulps.
            assert!((d1[i] - d2[i]).abs() < 1e-15, "{i}: {} vs {}", d1[i], d2[i]);
        }
    }

    #[test]
    fn explicit_matrix_is_applied_row_by_row() {
        let c = Coupling::new(&Topology::Matrix(vec![vec![0.0, 1.0], vec![0.0, 0.0]]), 2, 0.5);
        let mut d = [9.0; 2];
        c.drive(&[0.4, 0.8], &mut d);
        assert_eq!(d, [0.4, 0.0], "only neuron 0 is driven, by 0.5 * s_1");
    }

    #[test]
    fn sparse_rows_give_the_dense_sums_exactly() {
        // A ring of 50 is stored compressed; its sums equal the dense
        // product bit for bit (the dense one only adds zeros in between).
        let n = 50;
        let sparse = Coupling::new(&Topology::Ring, n, 0.3);
        assert!(matches!(sparse, Coupling::Sparse { .. }));
        let dense = Coupling::Dense {
            n,
            e: adjacency(&Topology::Ring, n).iter().map(|x| x * 0.3).collect(),
        };
        let s: Vec<f64> = (0..n).map(|i| (i as f64 * 0.77).sin()).collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        sparse.drive(&s, &mut a);
        dense.drive(&s, &mut b);
        assert_eq!(a, b);
        sparse.diffusive(&s, &mut a);
        dense.diffusive(&s, &mut b);
        assert_eq!(a, b);
        // A dense pattern stays dense.
        assert!(matches!(
            Coupling::new(&Topology::Matrix(vec![vec![1.0; 3]; 3]), 3, 1.0),
            Coupling::Dense { .. }
        ));
    }
}

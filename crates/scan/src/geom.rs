//! Geometry helpers: points, 3x3 homographies and the affine maps of the eight EXIF orientations.
//!
//! Coordinate convention everywhere in this crate: the centre of pixel (i, j) is at (i, j), so an
//! image of width W spans x in [-0.5, W - 0.5]. This is OpenCV's convention too.

/// A point in pixel coordinates (see the module docs for the convention).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Point { x, y }
    }
    pub fn dist(self, o: Point) -> f32 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
}

/// Row-major 3x3 matrix mapping homogeneous (x, y, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mat3(pub [f64; 9]);

impl Mat3 {
    pub const IDENTITY: Mat3 = Mat3([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);

    pub fn mul(&self, o: &Mat3) -> Mat3 {
        let a = &self.0;
        let b = &o.0;
        let mut r = [0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                r[i * 3 + j] = (0..3).map(|k| a[i * 3 + k] * b[k * 3 + j]).sum();
            }
        }
        Mat3(r)
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }

    pub fn apply_pt(&self, p: Point) -> Point {
        let (x, y) = self.apply(p.x as f64, p.y as f64);
        Point::new(x as f32, y as f32)
    }

    pub fn inverse(&self) -> Option<Mat3> {
        let m = &self.0;
        let c00 = m[4] * m[8] - m[5] * m[7];
        let c01 = m[5] * m[6] - m[3] * m[8];
        let c02 = m[3] * m[7] - m[4] * m[6];
        let det = m[0] * c00 + m[1] * c01 + m[2] * c02;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let d = 1.0 / det;
        Some(Mat3([
            c00 * d,
            (m[2] * m[7] - m[1] * m[8]) * d,
            (m[1] * m[5] - m[2] * m[4]) * d,
            c01 * d,
            (m[0] * m[8] - m[2] * m[6]) * d,
            (m[2] * m[3] - m[0] * m[5]) * d,
            c02 * d,
            (m[1] * m[6] - m[0] * m[7]) * d,
            (m[0] * m[4] - m[1] * m[3]) * d,
        ]))
    }

    /// The homography taking `src[i]` to `dst[i]` for four point pairs (no three collinear).
    #[allow(clippy::needless_range_loop)] // index form mirrors the elimination algorithm
    pub fn from_quads(src: &[Point; 4], dst: &[Point; 4]) -> Option<Mat3> {
        // Standard 8x8 DLT system with h22 = 1, solved by Gaussian elimination with pivoting.
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let (x, y) = (src[i].x as f64, src[i].y as f64);
            let (u, v) = (dst[i].x as f64, dst[i].y as f64);
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        for col in 0..8 {
            let piv = (col..8).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
            if a[piv][col].abs() < 1e-12 {
                return None;
            }
            a.swap(col, piv);
            for r in 0..8 {
                if r != col {
                    let f = a[r][col] / a[col][col];
                    if f != 0.0 {
                        for c in col..9 {
                            a[r][c] -= f * a[col][c];
                        }
                    }
                }
            }
        }
        let mut h = [0.0; 9];
        for i in 0..8 {
            h[i] = a[i][8] / a[i][i];
        }
        h[8] = 1.0;
        if h.iter().all(|v| v.is_finite()) {
            Some(Mat3(h))
        } else {
            None
        }
    }
}

/// EXIF orientation (tag 0x0112), values 1..=8; anything else is treated as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orientation(pub u8);

impl Orientation {
    pub fn normalized(v: u16) -> Orientation {
        if (1..=8).contains(&v) {
            Orientation(v as u8)
        } else {
            Orientation(1)
        }
    }

    /// Whether the displayed image has width and height swapped relative to the stored one.
    pub fn swaps_axes(self) -> bool {
        self.0 >= 5
    }

    /// Displayed (oriented) size for a stored size.
    pub fn oriented_size(self, raw_w: u32, raw_h: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (raw_h, raw_w)
        } else {
            (raw_w, raw_h)
        }
    }

    /// Affine map from displayed (oriented) coordinates to stored (raw) coordinates.
    /// Folding this into the warp means the full-size photo is never rotated in memory.
    pub fn oriented_to_raw(self, raw_w: u32, raw_h: u32) -> Mat3 {
        let w1 = raw_w as f64 - 1.0;
        let h1 = raw_h as f64 - 1.0;
        // rx = a*x + b*y + c ; ry = d*x + e*y + f
        let (a, b, c, d, e, f) = match self.0 {
            2 => (-1.0, 0.0, w1, 0.0, 1.0, 0.0),
            3 => (-1.0, 0.0, w1, 0.0, -1.0, h1),
            4 => (1.0, 0.0, 0.0, 0.0, -1.0, h1),
            5 => (0.0, 1.0, 0.0, 1.0, 0.0, 0.0),
            6 => (0.0, 1.0, 0.0, -1.0, 0.0, h1),
            7 => (0.0, -1.0, w1, -1.0, 0.0, h1),
            8 => (0.0, -1.0, w1, 1.0, 0.0, 0.0),
            _ => (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        };
        Mat3([a, b, c, d, e, f, 0.0, 0.0, 1.0])
    }
}

/// Orders four points as top-left, top-right, bottom-right, bottom-left (clockwise on screen).
pub fn order_corners(p: [Point; 4]) -> [Point; 4] {
    let cx = p.iter().map(|q| q.x).sum::<f32>() / 4.0;
    let cy = p.iter().map(|q| q.y).sum::<f32>() / 4.0;
    let mut v = p.to_vec();
    // Clockwise on screen (y down) is increasing atan2 angle.
    v.sort_by(|a, b| {
        (a.y - cy)
            .atan2(a.x - cx)
            .total_cmp(&(b.y - cy).atan2(b.x - cx))
    });
    let tl = (0..4)
        .min_by(|&i, &j| (v[i].x + v[i].y).total_cmp(&(v[j].x + v[j].y)))
        .unwrap_or(0);
    [v[tl], v[(tl + 1) % 4], v[(tl + 2) % 4], v[(tl + 3) % 4]]
}

/// Signed area of a polygon (positive when clockwise on screen).
pub fn polygon_area(p: &[Point]) -> f32 {
    let n = p.len();
    let mut s = 0.0f64;
    for i in 0..n {
        let a = p[i];
        let b = p[(i + 1) % n];
        s += a.x as f64 * b.y as f64 - b.x as f64 * a.y as f64;
    }
    (s / 2.0) as f32
}

/// True when the four ordered points form a strictly convex quadrilateral.
pub fn is_convex(q: &[Point; 4]) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let a = q[i];
        let b = q[(i + 1) % 4];
        let c = q[(i + 2) % 4];
        let cross = (b.x - a.x) * (c.y - b.y) - (b.y - a.y) * (c.x - b.x);
        if cross.abs() < 1e-3 {
            return false;
        }
        if sign == 0.0 {
            sign = cross.signum();
        } else if cross.signum() != sign {
            return false;
        }
    }
    true
}

/// Intersection of polygon `subject` with the convex polygon `clip` (Sutherland-Hodgman); both
/// clockwise on screen, as [`order_corners`] gives them.
pub fn clip_convex(subject: &[Point], clip: &[Point]) -> Vec<Point> {
    let mut out: Vec<Point> = subject.to_vec();
    let n = clip.len();
    for i in 0..n {
        if out.is_empty() {
            break;
        }
        let (a, b) = (clip[i], clip[(i + 1) % n]);
        // Inside = on the right of a->b on screen (clockwise polygon, y down): cross >= 0.
        let side = |p: Point| (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
        let input = std::mem::take(&mut out);
        for j in 0..input.len() {
            let (p, q) = (input[j], input[(j + 1) % input.len()]);
            let (sp, sq) = (side(p), side(q));
            if sp >= 0.0 {
                out.push(p);
            }
            if (sp >= 0.0) != (sq >= 0.0) {
                let t = sp / (sp - sq);
                out.push(Point::new(p.x + (q.x - p.x) * t, p.y + (q.y - p.y) * t));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_squares_gives_their_overlap() {
        let a = [
            Point::new(0., 0.),
            Point::new(10., 0.),
            Point::new(10., 10.),
            Point::new(0., 10.),
        ];
        let b = [
            Point::new(5., 5.),
            Point::new(15., 5.),
            Point::new(15., 15.),
            Point::new(5., 15.),
        ];
        assert!((polygon_area(&clip_convex(&a, &b)) - 25.0).abs() < 1e-3);
        assert!((polygon_area(&clip_convex(&a, &a)) - 100.0).abs() < 1e-3);
        let far = b.map(|p| Point::new(p.x + 100.0, p.y));
        assert!(polygon_area(&clip_convex(&a, &far)).abs() < 1e-3);
    }

    #[test]
    fn homography_round_trip() {
        let src = [
            Point::new(0., 0.),
            Point::new(100., 0.),
            Point::new(100., 200.),
            Point::new(0., 200.),
        ];
        let dst = [
            Point::new(10., 20.),
            Point::new(130., 25.),
            Point::new(120., 260.),
            Point::new(5., 230.),
        ];
        let h = Mat3::from_quads(&src, &dst).unwrap();
        for i in 0..4 {
            assert!(h.apply_pt(src[i]).dist(dst[i]) < 1e-3);
        }
        let hi = h.inverse().unwrap();
        assert!(hi.apply_pt(dst[2]).dist(src[2]) < 1e-3);
    }

    #[test]
    fn orientation_maps_corners() {
        // Orientation 6: stored 4x3, displayed 3x4 rotated clockwise. Displayed top-left is the
        // stored bottom-left.
        let m = Orientation(6).oriented_to_raw(4, 3);
        assert_eq!(m.apply(0.0, 0.0), (0.0, 2.0));
        assert_eq!(m.apply(2.0, 0.0), (0.0, 0.0));
        for o in 1..=8u8 {
            let m = Orientation(o).oriented_to_raw(4, 3);
            let (w, h) = Orientation(o).oriented_size(4, 3);
            for (x, y) in [(0.0, 0.0), (w as f64 - 1.0, h as f64 - 1.0)] {
                let (rx, ry) = m.apply(x, y);
                assert!(
                    (0.0..=3.0).contains(&rx) && (0.0..=2.0).contains(&ry),
                    "o={o}"
                );
            }
        }
    }
}

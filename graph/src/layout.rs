//! Where every box goes: nested boxes laid out by hand, in whole pixels, so
//! the same graph always gives the same drawing.
//!
//! Sizes are measured bottom-up (a box is as large as its text and its
//! children need) and children are placed relative to their parent in the
//! same pass; a second pass makes positions absolute. The arrangement by
//! kind: the Internet above the regions; regions side by side; in a region
//! its VPCs side by side, anything else below; in a VPC a header (name,
//! CIDR, badges, and the internet gateway on its top edge), the availability
//! zones as columns, and a panel of security groups, route tables and other
//! kinds below; in a zone its subnets stacked, public first; in a subnet its
//! instances stacked.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::topology::{Graph, Node, NodeKind};

/// Inner margin of every box.
pub const PAD: i32 = 10;
/// Space between sibling boxes.
pub const GAP: i32 = 12;
/// Height of a box's title line.
pub const TITLE: i32 = 22;
/// Height of one detail line.
pub const LINE: i32 = 15;
/// Width of one character at the drawing's text size (12 px).
pub const CHAR_W: i32 = 7;
/// Height of a badge and the space after a row of them.
pub const BADGE_H: i32 = 16;
/// Width of one character in a badge (10 px text).
pub const BADGE_CHAR_W: i32 = 6;
/// Widest a leaf box grows for its text; longer lines are cut with `…`.
pub const LEAF_W_MAX: i32 = 300;
const LEAF_W_MIN: i32 = 150;
const CONTAINER_W_MIN: i32 = 200;
/// The widest a VPC's panel row grows before it wraps.
const PANEL_W_MIN: i32 = 480;

const _: () = assert!(LINE > 0 && TITLE >= LINE && PAD > 0 && GAP > 0);
const _: () = assert!(LEAF_W_MIN < LEAF_W_MAX);

/// A box in pixels; `x`, `y` is its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    /// Whether `other` lies wholly inside this box.
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.x + other.w <= self.x + self.w
            && other.y + other.h <= self.y + self.h
    }

    /// Whether the two boxes share any area.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// Every node's box and the drawing's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub boxes: BTreeMap<String, Rect>,
    pub width: i32,
    pub height: i32,
}

/// `text` cut to fit `width` pixels at `char_w` per character.
pub fn fit(text: &str, width: i32, char_w: i32) -> String {
    let max = usize::try_from((width / char_w.max(1)).max(1)).unwrap_or(1);
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    }
}

fn text_w(text: &str, char_w: i32) -> i32 {
    i32::try_from(text.chars().count())
        .unwrap_or(i32::MAX / 2)
        .saturating_mul(char_w)
}

/// The width of a badge showing `text`.
pub fn badge_w(text: &str, inner_w: i32) -> i32 {
    (text_w(text, BADGE_CHAR_W) + 10).min(inner_w.max(20))
}

/// Where the badges of a box of inner width `inner_w` go: offsets from the
/// first badge's top-left, and the height of all rows.
pub fn badge_rows(badges: &[String], inner_w: i32) -> (Vec<(i32, i32)>, i32) {
    let mut at = Vec::with_capacity(badges.len());
    let (mut x, mut y) = (0, 0);
    for b in badges {
        let w = badge_w(b, inner_w);
        if x > 0 && x + w > inner_w {
            x = 0;
            y += BADGE_H + 4;
        }
        at.push((x, y));
        x += w + 4;
    }
    let height = if badges.is_empty() {
        0
    } else {
        y + BADGE_H + 4
    };
    (at, height)
}

/// The height of a box's own text: title, detail lines, badges.
pub fn text_h(n: &Node, w: i32) -> i32 {
    let lines = i32::try_from(n.detail.len()).unwrap_or(i32::MAX / LINE);
    TITLE + lines * LINE + badge_rows(&n.badges, w - 2 * PAD).1
}

/// Lays out `graph`.
pub fn layout(graph: &Graph) -> Layout {
    let mut children: BTreeMap<Option<&str>, Vec<&Node>> = BTreeMap::new();
    for n in &graph.nodes {
        children.entry(n.parent.as_deref()).or_default().push(n);
    }
    let mut m = Measure {
        children: &children,
        size: BTreeMap::new(),
        offset: BTreeMap::new(),
    };
    let (width, height) = m.top();
    let mut boxes = BTreeMap::new();
    for n in &graph.nodes {
        let mut x = 0;
        let mut y = 0;
        let mut at: Option<&str> = Some(&n.id);
        while let Some(id) = at {
            let (dx, dy) = m.offset.get(id).copied().unwrap_or_default();
            x += dx;
            y += dy;
            at = graph.node(id).and_then(|p| p.parent.as_deref());
        }
        let (w, h) = m.size.get(n.id.as_str()).copied().unwrap_or((0, 0));
        boxes.insert(n.id.clone(), Rect { x, y, w, h });
    }
    Layout {
        boxes,
        width,
        height,
    }
}

/// The bottom-up pass: sizes, and offsets from the parent's corner.
struct Measure<'g> {
    children: &'g BTreeMap<Option<&'g str>, Vec<&'g Node>>,
    size: BTreeMap<&'g str, (i32, i32)>,
    offset: BTreeMap<&'g str, (i32, i32)>,
}

impl<'g> Measure<'g> {
    fn kids(&self, id: &str) -> Vec<&'g Node> {
        self.children.get(&Some(id)).cloned().unwrap_or_default()
    }

    /// The Internet centred above the regions, which sit side by side.
    fn top(&mut self) -> (i32, i32) {
        let top = self.children.get(&None).cloned().unwrap_or_default();
        let (internet, regions): (Vec<&Node>, Vec<&Node>) =
            top.into_iter().partition(|n| n.kind == NodeKind::Internet);
        let mut y = GAP;
        let row_h = internet
            .iter()
            .map(|n| self.measure(n).1)
            .max()
            .unwrap_or(0);
        let regions_y = y + row_h + 3 * GAP;
        let (row_w, regions_h) = self.row(&regions, GAP, regions_y);
        let width = row_w.max(LEAF_W_MIN) + 2 * GAP;
        let mut x = (width
            - internet
                .iter()
                .map(|n| self.measure(n).0 + GAP)
                .sum::<i32>())
            / 2;
        for n in &internet {
            let (w, _) = self.measure(n);
            self.offset.insert(&n.id, (x, y));
            x += w + GAP;
        }
        y = regions_y + regions_h + GAP;
        (width, y)
    }

    /// Places `nodes` side by side from (GAP, y); returns the row's width
    /// (without the leading gap) and height.
    fn row(&mut self, nodes: &[&'g Node], x0: i32, y: i32) -> (i32, i32) {
        let (mut x, mut h) = (x0, 0);
        for n in nodes {
            let (w, nh) = self.measure(n);
            self.offset.insert(&n.id, (x, y));
            x += w + GAP;
            h = h.max(nh);
        }
        ((x - x0 - GAP).max(0), h)
    }

    /// Places `nodes` in a column from (x, y); returns its height.
    fn column(&mut self, nodes: &[&'g Node], x: i32, y: i32) -> i32 {
        let mut at = y;
        for n in nodes {
            let (_, h) = self.measure(n);
            self.offset.insert(&n.id, (x, at));
            at += h + GAP;
        }
        (at - y - GAP).max(0)
    }

    /// Places `nodes` in rows no wider than `max_w` from (x, y); returns
    /// the height used.
    fn wrap(&mut self, nodes: &[&'g Node], x0: i32, y0: i32, max_w: i32) -> i32 {
        let (mut x, mut y, mut row_h) = (x0, y0, 0);
        for n in nodes {
            let (w, h) = self.measure(n);
            if x > x0 && x + w > x0 + max_w {
                x = x0;
                y += row_h + GAP;
                row_h = 0;
            }
            self.offset.insert(&n.id, (x, y));
            x += w + GAP;
            row_h = row_h.max(h);
        }
        if nodes.is_empty() {
            0
        } else {
            y + row_h - y0
        }
    }

    fn measure(&mut self, n: &'g Node) -> (i32, i32) {
        if let Some(s) = self.size.get(n.id.as_str()) {
            return *s;
        }
        let s = match n.kind {
            NodeKind::Region => self.region(n),
            NodeKind::Vpc => self.vpc(n),
            NodeKind::Zone | NodeKind::Subnet => self.stack(n),
            _ => self.leaf(n),
        };
        self.size.insert(&n.id, s);
        s
    }

    /// A box of text only (children, if any, are stacked like a subnet's).
    fn leaf(&mut self, n: &'g Node) -> (i32, i32) {
        if !self.kids(&n.id).is_empty() {
            return self.stack(n);
        }
        let w = own_w(n).clamp(LEAF_W_MIN, LEAF_W_MAX);
        (w, text_h(n, w) + PAD)
    }

    /// Children stacked in one column under the box's text.
    fn stack(&mut self, n: &'g Node) -> (i32, i32) {
        let kids = self.kids(&n.id);
        let kids_w = kids.iter().map(|k| self.measure(k).0).max().unwrap_or(0);
        let w = own_w(n)
            .clamp(CONTAINER_W_MIN, LEAF_W_MAX)
            .max(kids_w + 2 * PAD);
        let top = text_h(n, w) + PAD / 2;
        let h = self.column(&kids, PAD, top);
        (w, top + h + PAD)
    }

    /// A VPC: header with the gateway on its top edge, zone columns, then
    /// the panel.
    fn vpc(&mut self, n: &'g Node) -> (i32, i32) {
        let kids = self.kids(&n.id);
        let (gateways, rest): (Vec<&Node>, Vec<&Node>) = kids
            .into_iter()
            .partition(|k| k.kind == NodeKind::InternetGateway);
        let (zones, panel): (Vec<&Node>, Vec<&Node>) =
            rest.into_iter().partition(|k| k.kind == NodeKind::Zone);
        let gateways_w = gateways
            .iter()
            .map(|g| self.measure(g).0 + GAP)
            .sum::<i32>();
        let zones_w = zones.iter().map(|z| self.measure(z).0 + GAP).sum::<i32>() - GAP;
        let header_w = own_w(n).max(CONTAINER_W_MIN) + gateways_w;
        let w = (zones_w.max(header_w).max(PANEL_W_MIN)) + 2 * PAD;
        let gateways_h = gateways
            .iter()
            .map(|g| self.measure(g).1)
            .max()
            .unwrap_or(0);
        // The gateways sit on the top edge, at the right of the header.
        let mut x = w - PAD - gateways_w + GAP;
        for g in &gateways {
            self.offset.insert(&g.id, (x, 0));
            x += self.measure(g).0 + GAP;
        }
        let top = (text_h(n, w - gateways_w) + PAD / 2).max(gateways_h + GAP);
        let (_, zones_h) = self.row(&zones, PAD, top);
        let panel_y = top + zones_h + if zones.is_empty() { 0 } else { GAP };
        let panel_h = self.wrap(&panel, PAD, panel_y, w - 2 * PAD);
        (w, panel_y + panel_h + PAD)
    }

    /// A region: its VPCs side by side, anything else wrapped below.
    fn region(&mut self, n: &'g Node) -> (i32, i32) {
        let kids = self.kids(&n.id);
        let (vpcs, rest): (Vec<&Node>, Vec<&Node>) =
            kids.into_iter().partition(|k| k.kind == NodeKind::Vpc);
        let top = text_h(n, CONTAINER_W_MIN) + PAD / 2;
        let (vpcs_w, vpcs_h) = self.row(&vpcs, PAD, top);
        let w = vpcs_w.max(own_w(n)).max(PANEL_W_MIN) + 2 * PAD;
        let rest_y = top + vpcs_h + if vpcs.is_empty() { 0 } else { GAP };
        let rest_h = self.wrap(&rest, PAD, rest_y, w - 2 * PAD);
        (w, rest_y + rest_h + PAD)
    }
}

/// The width a box's own text asks for.
fn own_w(n: &Node) -> i32 {
    let title = text_w(&n.label, CHAR_W) + 8;
    let detail = n
        .detail
        .iter()
        .map(|d| text_w(d, CHAR_W))
        .max()
        .unwrap_or(0);
    let badges = n
        .badges
        .iter()
        .map(|b| text_w(b, BADGE_CHAR_W) + 14)
        .max()
        .unwrap_or(0);
    title.max(detail).max(badges).min(LEAF_W_MAX) + 2 * PAD
}

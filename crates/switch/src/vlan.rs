//! 802.1Q port membership: access ports carry one VLAN untagged, trunk
//! ports carry a set of VLANs tagged and optionally one native VLAN untagged.

/// The VLANs 1..=4094 as a bitmap.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet([u64; 64]);

impl VlanSet {
    pub fn empty() -> VlanSet {
        VlanSet([0; 64])
    }

    /// Every valid VLAN, 1..=4094.
    pub fn all() -> VlanSet {
        let mut s = VlanSet([u64::MAX; 64]);
        s.0[0] &= !1; // VLAN 0: priority tag, not a VLAN
        s.0[63] &= !(1 << 63); // VLAN 4095: reserved
        s
    }

    pub fn insert(&mut self, vid: u16) {
        if (1..=4094).contains(&vid) {
            self.0[usize::from(vid / 64)] |= 1 << (vid % 64);
        }
    }

    pub fn contains(&self, vid: u16) -> bool {
        vid < 4096 && self.0[usize::from(vid / 64)] & (1 << (vid % 64)) != 0
    }
}

impl FromIterator<u16> for VlanSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> VlanSet {
        let mut s = VlanSet::empty();
        iter.into_iter().for_each(|v| s.insert(v));
        s
    }
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries((0..4096u16).filter(|v| self.contains(*v)))
            .finish()
    }
}

/// How a port takes part in VLANs.
// A trunk's 512-byte bitmap makes membership a single bit test; a switch
// has few ports, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// Carries one VLAN, untagged on the wire.
    Access { vlan: u16 },
    /// Carries `allowed` VLANs tagged; `native`, if any, travels untagged.
    Trunk {
        native: Option<u16>,
        allowed: VlanSet,
    },
}

impl PortMode {
    /// The VLAN a frame arriving with tag `vid` (0: untagged or
    /// priority-tagged) belongs to, or `None` if the port does not take it.
    pub fn ingress_vlan(&self, vid: u16) -> Option<u16> {
        match self {
            PortMode::Access { vlan } => (vid == 0 || vid == *vlan).then_some(*vlan),
            PortMode::Trunk { native, allowed } => match vid {
                0 => *native,
                v if allowed.contains(v) || Some(v) == *native => Some(v),
                _ => None,
            },
        }
    }

    /// Whether the port carries `vlan` at all.
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            PortMode::Access { vlan: v } => *v == vlan,
            PortMode::Trunk { native, allowed } => *native == Some(vlan) || allowed.contains(vlan),
        }
    }

    /// Whether frames of `vlan` leave this port tagged.
    pub fn tags(&self, vlan: u16) -> bool {
        matches!(self, PortMode::Trunk { native, .. } if *native != Some(vlan))
    }
}

//! Classic-BPF instructions and a tiny assembler for them: emits instructions, resolves
//! forward labels into the 8-bit conditional and 32-bit unconditional jump offsets, and
//! prefixes the scratch-memory initialisation Linux's validator wants.

use std::fmt;

/// One classic-BPF instruction: `struct bpf_insn` (macOS) / `struct sock_filter`
/// (Linux), 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `BPF_MAXINSNS` on macOS; Linux allows 4096. Every filter configuration stays below
/// it: the largest is under 450 instructions (438, with the most directed broadcasts a
/// filter holds, `MAX_BROADCASTS`; the spec's default filter, STAMP included, on an
/// interface with two IPv4 prefixes compiles to 380).
pub const MAX_INSNS: usize = 512;

/// Opcode parts from `<net/bpf.h>` (identical values in `<linux/filter.h>`).
pub mod op {
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;

    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;

    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;

    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;

    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;

    /// Operand is the constant `k`.
    pub const K: u16 = 0x00;
    /// Operand is the X register.
    pub const X: u16 = 0x08;

    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;

    /// Scratch memory words (`BPF_MEMWORDS`).
    pub const MEMWORDS: u32 = 16;
}

/// The program could not be laid out. Only a change to the signature table or to the
/// generator can cause this; every current filter configuration compiles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("classic-BPF program has {0} instructions; macOS accepts at most {MAX_INSNS}")]
    TooLong(usize),
    #[error(
        "classic-BPF jump at instruction {at} spans {distance} instructions; the limit is 255"
    )]
    JumpTooFar { at: usize, distance: usize },
}

/// A non-jump instruction.
const fn insn(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A forward-jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Label(usize);

/// Where a conditional jump goes: the next instruction or a label.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dest {
    Next,
    To(Label),
}

impl From<Label> for Dest {
    fn from(label: Label) -> Self {
        Dest::To(label)
    }
}

/// A tiny assembler: emits instructions and resolves forward labels at the end.
#[derive(Default)]
pub(super) struct Asm {
    insns: Vec<Insn>,
    /// Instruction index each label was bound to.
    labels: Vec<Option<usize>>,
    /// Conditional jumps to resolve: (instruction, true target, false target).
    branches: Vec<(usize, Dest, Dest)>,
    /// Unconditional jumps to resolve: (instruction, target).
    gotos: Vec<(usize, Label)>,
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    pub(super) fn bind(&mut self, label: Label) {
        debug_assert!(self.labels[label.0].is_none(), "label bound twice");
        self.labels[label.0] = Some(self.insns.len());
    }

    pub(super) fn push(&mut self, code: u16, k: u32) {
        self.insns.push(insn(code, k));
    }

    pub(super) fn ld(&mut self, mode_and_size: u16, k: u32) {
        self.push(op::LD | mode_and_size, k);
    }

    pub(super) fn ldx_mem(&mut self, slot: u32) {
        debug_assert!(slot < op::MEMWORDS);
        self.push(op::LDX | op::MEM, slot);
    }

    pub(super) fn st(&mut self, slot: u32) {
        debug_assert!(slot < op::MEMWORDS);
        self.push(op::ST, slot);
    }

    pub(super) fn stx(&mut self, slot: u32) {
        debug_assert!(slot < op::MEMWORDS);
        self.push(op::STX, slot);
    }

    pub(super) fn alu(&mut self, operation: u16, k: u32) {
        self.push(op::ALU | operation | op::K, k);
    }

    pub(super) fn alu_x(&mut self, operation: u16) {
        self.push(op::ALU | operation | op::X, 0);
    }

    pub(super) fn tax(&mut self) {
        self.push(op::MISC | op::TAX, 0);
    }

    pub(super) fn txa(&mut self) {
        self.push(op::MISC | op::TXA, 0);
    }

    pub(super) fn ret(&mut self, k: u32) {
        self.push(op::RET | op::K, k);
    }

    pub(super) fn ja(&mut self, target: Label) {
        self.gotos.push((self.insns.len(), target));
        self.push(op::JMP | op::JA, 0);
    }

    pub(super) fn jump(&mut self, code: u16, k: u32, jt: Dest, jf: Dest) {
        self.branches.push((self.insns.len(), jt, jf));
        self.push(op::JMP | code, k);
    }

    pub(super) fn jeq(&mut self, k: u32, jt: Dest, jf: Dest) {
        self.jump(op::JEQ | op::K, k, jt, jf);
    }

    pub(super) fn jge(&mut self, k: u32, jt: Dest, jf: Dest) {
        self.jump(op::JGE | op::K, k, jt, jf);
    }

    pub(super) fn jset(&mut self, k: u32, jt: Dest, jf: Dest) {
        self.jump(op::JSET | op::K, k, jt, jf);
    }

    /// Distance from the instruction after `at` to `dest`.
    fn distance(&self, at: usize, dest: Dest) -> usize {
        match dest {
            Dest::Next => 0,
            Dest::To(label) => {
                let target = self.labels[label.0].expect("jump to a label that was never bound");
                assert!(target > at, "classic BPF only jumps forward");
                target - at - 1
            }
        }
    }

    pub(super) fn finish(mut self) -> Result<Vec<Insn>, CompileError> {
        if self.insns.len() > MAX_INSNS {
            return Err(CompileError::TooLong(self.insns.len()));
        }
        for &(at, jt, jf) in &self.branches {
            let short = |dest| {
                let distance = self.distance(at, dest);
                u8::try_from(distance).map_err(|_| CompileError::JumpTooFar { at, distance })
            };
            let (jt, jf) = (short(jt)?, short(jf)?);
            self.insns[at].jt = jt;
            self.insns[at].jf = jf;
        }
        for &(at, target) in &self.gotos {
            // Bounded by MAX_INSNS, so it always fits the 32-bit k.
            self.insns[at].k = self.distance(at, Dest::To(target)) as u32;
        }
        let program = self.zero_scratch_memory();
        if program.len() > MAX_INSNS {
            return Err(CompileError::TooLong(program.len()));
        }
        Ok(program)
    }

    /// Prefix the program with stores of 0 to every scratch slot it reads.
    ///
    /// Linux's validator (`check_load_and_stores`) scans the program linearly and lets
    /// a `ret` "fall through" into the next instruction, so a slot written before a
    /// section's entry jump counts as unwritten after the previous section's `ret #0`,
    /// and the program is refused with EINVAL. Initialising the slots up front satisfies
    /// it; the prefix does not move any relative jump.
    fn zero_scratch_memory(self) -> Vec<Insn> {
        let mut read = [false; op::MEMWORDS as usize];
        for insn in &self.insns {
            if insn.code == op::LD | op::MEM || insn.code == op::LDX | op::MEM {
                read[insn.k as usize] = true;
            }
        }
        let slots: Vec<u32> = (0..op::MEMWORDS).filter(|k| read[*k as usize]).collect();
        let mut program = Vec::with_capacity(self.insns.len() + slots.len() + 1);
        if !slots.is_empty() {
            program.push(insn(op::LD | op::IMM, 0));
            program.extend(slots.into_iter().map(|k| insn(op::ST, k)));
        }
        program.extend(self.insns);
        program
    }
}

impl fmt::Display for Insn {
    /// `{ code, jt, jf, k }`, the form `tcpdump -dd` prints, for debugging.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{ 0x{:02x}, {}, {}, 0x{:08x} }}",
            self.code, self.jt, self.jf, self.k
        )
    }
}

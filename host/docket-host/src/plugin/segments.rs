//! Fewer data segments in a wizer snapshot.
//!
//! wizer writes one active data segment per run of non-zero bytes (merging
//! only gaps of up to four zero bytes), up to 10,000 of them. wasmtime pays
//! for every data segment of a module each time it makes an instance (the
//! segment's length and base are written into the instance's context), so a
//! snapshot of a heap, where zero words are everywhere, cost validate-schema
//! about 30 µs per execution in that loop alone. Merging segments whose gap
//! is at most [`MAX_GAP`] zero bytes gives the same initial memory (a gap is
//! zeros, which is what memory holds where no segment writes) with a few
//! hundred segments; the copy-on-write image wasmtime maps spans the lowest
//! to the highest segment either way.

use wasmparser::{
    BinaryReader, CodeSectionReader, DataKind, DataSectionReader, ImportSectionReader, Operator,
    TypeRef,
};

/// The largest run of zero bytes a merged segment carries.
pub(crate) const MAX_GAP: u64 = 64 * 1024;

const IMPORT: u8 = 2;
const CODE: u8 = 10;
const DATA: u8 = 11;
const DATA_COUNT: u8 = 12;
const CORE_MODULE: u8 = 1;
const COMPONENT: u8 = 4;

/// `bytes` (a core module or a component) with the active data segments of
/// each core module merged where at most [`MAX_GAP`] zero bytes lie between
/// them (in a memory it defines), and its passive segments dropped when no
/// instruction names a data segment (else kept, at their indices, if they
/// come first and no instruction names an active one). A module with a
/// segment whose offset is not a constant, or anything this does not
/// understand, is left as it is.
pub(crate) fn coalesce(bytes: &[u8]) -> Vec<u8> {
    rewrite(bytes).unwrap_or_else(|| bytes.to_vec())
}

fn rewrite(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = bytes.get(..8)?;
    match header.get(4..8)? {
        [1, 0, 0, 0] => module(bytes),
        [_, _, 1, 0] => component(bytes),
        _ => None,
    }
}

/// Each section of `bytes` (after its 8-byte header): id, contents.
fn sections(bytes: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let id = *bytes.get(at)?;
        let (len, next) = read_leb(bytes, at + 1)?;
        let end = next.checked_add(usize::try_from(len).ok()?)?;
        out.push((id, bytes.get(next..end)?));
        at = end;
    }
    Some(out)
}

fn component(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes[..8].to_vec();
    for (id, contents) in sections(bytes)? {
        let contents = match id {
            CORE_MODULE => module(contents)?,
            COMPONENT => component(contents)?,
            _ => contents.to_vec(),
        };
        push_section(&mut out, id, &contents);
    }
    Some(out)
}

struct Segment {
    memory: u32,
    is64: bool,
    offset: u64,
    data: Vec<u8>,
}

fn module(bytes: &[u8]) -> Option<Vec<u8>> {
    let sections = sections(bytes)?;
    let Some(&(_, data)) = sections.iter().find(|(id, _)| *id == DATA) else {
        return Some(bytes.to_vec());
    };
    // A gap is zeros only in a memory the module defines: an imported one
    // holds what it holds before instantiation.
    if imports_memory(&sections)? {
        return None;
    }
    // Passive segments are named by index (`memory.init`, `data.drop`):
    // without such an instruction they are unreachable, and wizer leaves one
    // empty passive segment for each active segment of the original.
    let named = highest_data_index(&sections)?;
    let mut passive = Vec::new();
    let mut segments = Vec::new();
    for segment in DataSectionReader::new(BinaryReader::new(data, 0)).ok()? {
        let segment = segment.ok()?;
        let DataKind::Active {
            memory_index,
            offset_expr,
        } = segment.kind
        else {
            // Merging renumbers active segments: keep the passive ones
            // first, at their indices.
            if !segments.is_empty() {
                return None;
            }
            passive.push(segment.data);
            continue;
        };
        let mut ops = offset_expr.get_operators_reader();
        let (offset, is64) = match ops.read().ok()? {
            Operator::I32Const { value } => (u64::from(value.cast_unsigned()), false),
            Operator::I64Const { value } => (value.cast_unsigned(), true),
            _ => return None,
        };
        if !matches!(ops.read().ok()?, Operator::End) || !ops.eof() {
            return None;
        }
        segments.push(Segment {
            memory: memory_index,
            is64,
            offset,
            data: segment.data.to_vec(),
        });
    }
    match named {
        None => passive.clear(),
        // An instruction that names an active segment (`data.drop` may)
        // would name another one, or none, once they are merged.
        Some(highest) if usize::try_from(highest).ok()? >= passive.len() => return None,
        Some(_) => {}
    }
    // Later segments overwrite earlier ones where they overlap: merge only
    // when no two overlap, so that order does not matter.
    segments.sort_by_key(|s| (s.memory, s.offset));
    let mut merged: Vec<Segment> = Vec::with_capacity(segments.len());
    for segment in segments {
        if let Some(last) = merged.last_mut()
            && last.memory == segment.memory
        {
            let end = last.offset.checked_add(last.data.len() as u64)?;
            if segment.offset < end {
                return None;
            }
            let gap = segment.offset - end;
            if gap <= MAX_GAP {
                last.data
                    .resize(last.data.len() + usize::try_from(gap).ok()?, 0);
                last.data.extend_from_slice(&segment.data);
                continue;
            }
        }
        merged.push(segment);
    }

    let count = (passive.len() + merged.len()) as u64;
    let mut section = Vec::new();
    write_leb(&mut section, count);
    for data in &passive {
        section.push(1);
        write_leb(&mut section, data.len() as u64);
        section.extend_from_slice(data);
    }
    for segment in &merged {
        if segment.memory == 0 {
            section.push(0);
        } else {
            section.push(2);
            write_leb(&mut section, u64::from(segment.memory));
        }
        if segment.is64 {
            section.push(0x42);
            write_sleb(&mut section, segment.offset.cast_signed());
        } else {
            section.push(0x41);
            let offset = u32::try_from(segment.offset).ok()?;
            write_sleb(&mut section, i64::from(offset.cast_signed()));
        }
        section.push(0x0b);
        write_leb(&mut section, segment.data.len() as u64);
        section.extend_from_slice(&segment.data);
    }
    let mut count_section = Vec::new();
    write_leb(&mut count_section, count);

    let mut out = bytes[..8].to_vec();
    for (id, contents) in sections {
        match id {
            DATA => push_section(&mut out, id, &section),
            DATA_COUNT => push_section(&mut out, id, &count_section),
            _ => push_section(&mut out, id, contents),
        }
    }
    Some(out)
}

/// Whether the module imports a memory; `None` if the imports do not parse.
fn imports_memory(sections: &[(u8, &[u8])]) -> Option<bool> {
    let Some(&(_, imports)) = sections.iter().find(|(id, _)| *id == IMPORT) else {
        return Some(false);
    };
    for import in ImportSectionReader::new(BinaryReader::new(imports, 0))
        .ok()?
        .into_imports()
    {
        if matches!(import.ok()?.ty, TypeRef::Memory(_)) {
            return Some(true);
        }
    }
    Some(false)
}

/// The highest data segment index an instruction of the module names
/// (`memory.init`, `data.drop`), if any does; `None` if the code does not
/// parse.
fn highest_data_index(sections: &[(u8, &[u8])]) -> Option<Option<u32>> {
    let Some(&(_, code)) = sections.iter().find(|(id, _)| *id == CODE) else {
        return Some(None);
    };
    let mut highest = None;
    for body in CodeSectionReader::new(BinaryReader::new(code, 0)).ok()? {
        let mut ops = body.ok()?.get_operators_reader().ok()?;
        while !ops.eof() {
            if let Operator::MemoryInit { data_index, .. } | Operator::DataDrop { data_index } =
                ops.read().ok()?
            {
                highest = highest.max(Some(data_index));
            }
        }
    }
    Some(highest)
}

fn push_section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    write_leb(out, contents.len() as u64);
    out.extend_from_slice(contents);
}

fn read_leb(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((value, at));
        }
    }
    None
}

fn write_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_sleb(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments_of(module: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let sections = sections(module).expect("sections");
        let (_, data) = sections
            .iter()
            .find(|(id, _)| *id == DATA)
            .expect("data section");
        DataSectionReader::new(BinaryReader::new(data, 0))
            .expect("reader")
            .into_iter()
            .map(|segment| {
                let segment = segment.expect("segment");
                let DataKind::Active { offset_expr, .. } = segment.kind else {
                    panic!("a passive segment");
                };
                let Ok(Operator::I32Const { value }) = offset_expr.get_operators_reader().read()
                else {
                    panic!("offset");
                };
                (u64::from(value.cast_unsigned()), segment.data.to_vec())
            })
            .collect()
    }

    #[test]
    fn near_segments_merge_with_zeros_between_and_far_ones_stay_apart() {
        let far = 60_001 + MAX_GAP + 1;
        let wat = format!(
            r#"(module (memory 4)
                 (data (i32.const 60000) "\05")
                 (data (i32.const 16) "ab")
                 (data (i32.const 20) "c")
                 (data (i32.const {far}) "far"))"#
        );
        let before = wat::parse_str(&wat).expect("wat");
        let after = coalesce(&before);
        wasmtime::Module::new(&wasmtime::Engine::default(), &after).expect("valid");
        let mut expected = b"ab\0\0c".to_vec();
        expected.resize(60_000 - 16, 0);
        expected.push(5);
        let segments = segments_of(&after);
        assert!(
            segments == vec![(16, expected), (far, b"far".to_vec())],
            "{:?}",
            segments
                .iter()
                .map(|(at, data)| (at, data.len()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn unused_passive_segments_go_and_used_ones_keep_their_index() {
        let unused =
            wat::parse_str(r#"(module (memory 1) (data "x") (data "") (data (i32.const 8) "y"))"#)
                .expect("wat");
        let after = coalesce(&unused);
        wasmtime::Module::new(&wasmtime::Engine::default(), &after).expect("valid");
        assert_eq!(segments_of(&after), vec![(8, b"y".to_vec())]);

        let used = wat::parse_str(
            r#"(module (memory 1) (data "x") (data (i32.const 8) "y") (data (i32.const 10) "z")
                 (func (data.drop 0)))"#,
        )
        .expect("wat");
        let after = coalesce(&used);
        wasmtime::Module::new(&wasmtime::Engine::default(), &after).expect("valid");
        let sections = sections(&after).expect("sections");
        let (_, data) = sections.iter().find(|(id, _)| *id == DATA).expect("data");
        let kinds: Vec<_> = DataSectionReader::new(BinaryReader::new(data, 0))
            .expect("reader")
            .into_iter()
            .map(|segment| {
                let segment = segment.expect("segment");
                (
                    matches!(segment.kind, DataKind::Passive),
                    segment.data.to_vec(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![(true, b"x".to_vec()), (false, b"y\0z".to_vec())]
        );
    }

    #[test]
    fn a_module_naming_an_active_segment_is_left_as_it_is() {
        let before = wat::parse_str(
            r#"(module (memory 1) (data (i32.const 0) "a") (data (i32.const 8) "b")
                 (func (data.drop 1)))"#,
        )
        .expect("wat");
        assert_eq!(coalesce(&before), before);
    }

    #[test]
    fn an_imported_memory_is_left_as_it_is() {
        let before = wat::parse_str(
            r#"(module (import "env" "memory" (memory 1)) (data (i32.const 0) "a") (data (i32.const 8) "b"))"#,
        )
        .expect("wat");
        assert_eq!(coalesce(&before), before);
    }
}

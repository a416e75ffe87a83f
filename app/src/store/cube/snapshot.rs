//! The aggregate saved to a file at a clean shutdown and read back at the next start, so a
//! restart doesn't re-read every call. A plain little-endian binary format, versioned; the file
//! also records a mark of the database it was taken from (see `derived`), and is used only when
//! the database still matches it. Hand-written: a few hundred lines of fixed-width fields do not
//! need a serialization framework in the binary.

use super::traces::TraceEntry;
use super::{Cube, Hour, Interner, LatRow, ProjectCube, Row, TagSet, ToolRow};
use std::io::{self, Read, Write};

const MAGIC: &[u8; 8] = b"TTAGG\x00\x00\x03";
/// A name's length when the name is left out (no live tag set uses it: a deleted user's).
const GONE: u64 = u64::MAX;

struct W<'a, T: Write>(&'a mut T);

impl<T: Write> W<'_, T> {
    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    fn i64(&mut self, v: i64) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    fn len(&mut self, n: usize) -> io::Result<()> {
        self.u64(n as u64)
    }
    fn str(&mut self, s: &str) -> io::Result<()> {
        self.len(s.len())?;
        self.0.write_all(s.as_bytes())
    }
    fn interner(&mut self, i: &Interner) -> io::Result<()> {
        self.len(i.names.len())?;
        i.names.iter().try_for_each(|n| self.str(n))
    }
    /// An interner whose names `used` doesn't mark are left out (their ids stay taken).
    fn interner_used(&mut self, i: &Interner, used: &[bool]) -> io::Result<()> {
        self.len(i.names.len())?;
        for (id, n) in i.names.iter().enumerate() {
            if used.get(id).copied().unwrap_or(false) {
                self.str(n)?;
            } else {
                self.u64(GONE)?;
            }
        }
        Ok(())
    }
}

struct R<'a, T: Read>(&'a mut T);

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("aggregate snapshot: bad {what}"))
}

impl<T: Read> R<'_, T> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.0.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    /// A count, bounded so a corrupt file can't ask for a huge allocation.
    fn len(&mut self) -> io::Result<usize> {
        let n = self.u64()?;
        if n > 1 << 32 {
            return Err(bad("length"));
        }
        Ok(n as usize)
    }
    fn interner(&mut self) -> io::Result<Interner> {
        let n = self.len()?;
        let mut i = Interner::default();
        for id in 0..n {
            let len = self.u64()?;
            if len == GONE {
                i.push_gone();
                continue;
            }
            if len > 1 << 20 {
                return Err(bad("string length"));
            }
            let mut b = vec![0u8; len as usize];
            self.0.read_exact(&mut b)?;
            let s = String::from_utf8(b).map_err(|_| bad("string"))?;
            // Ids are positions: a name given twice would shift every later one.
            if i.id(&s) as usize != id {
                return Err(bad("names"));
            }
        }
        Ok(i)
    }
}

/// A vector for `n` items read from the file: sized up front (a vector grown by doubling keeps
/// up to twice its size), within a bound a damaged count can't push into a huge allocation.
fn sized<T>(n: usize) -> Vec<T> {
    Vec::with_capacity(n.min(1 << 20))
}

/// Writes `cube` with the database `mark` it matches.
pub fn write(cube: &Cube, mark: &[i64], out: &mut impl Write) -> io::Result<()> {
    let mut w = W(out);
    w.0.write_all(MAGIC)?;
    w.len(mark.len())?;
    mark.iter().try_for_each(|m| w.i64(*m))?;
    w.len(cube.projects.len())?;
    for (id, p) in &cube.projects {
        w.i64(*id)?;
        // Users and tag values no live tag set uses (a deleted user's) are left out of the file.
        let (mut users, mut values) = (vec![false; p.users.len()], vec![false; p.values.len()]);
        for t in p.tag_sets.iter().filter(|t| t.live) {
            if let Some(u) = users.get_mut(t.user as usize) {
                *u = true;
            }
            for (_, v) in &t.kv {
                if let Some(v) = values.get_mut(*v as usize) {
                    *v = true;
                }
            }
        }
        for i in [&p.providers, &p.models, &p.agents, &p.tools] {
            w.interner(i)?;
        }
        w.interner_used(&p.users, &users)?;
        w.interner(&p.keys)?;
        w.interner_used(&p.values, &values)?;
        w.len(p.combos.len())?;
        for (a, b, c) in &p.combos {
            w.u32(*a)?;
            w.u32(*b)?;
            w.u32(*c)?;
        }
        w.len(p.tag_sets.len())?;
        for t in &p.tag_sets {
            w.i64(t.db_id)?;
            w.u32(t.user)?;
            w.u32(u32::from(t.live))?;
            w.len(t.kv.len())?;
            for (k, v) in &t.kv {
                w.u32(*k)?;
                w.u32(*v)?;
            }
        }
        w.len(p.hours.len())?;
        for (hour, h) in &p.hours {
            w.i64(*hour)?;
            w.len(h.rows.len())?;
            for r in h.rows.iter() {
                for v in [r.tag_set, r.user, r.combo, r.calls, r.errors, r.unpriced, r.last_ms] {
                    w.u32(v)?;
                }
                r.firsts.iter().try_for_each(|f| w.u32(*f as u32))?;
                for v in [r.input, r.output, r.cache_read, r.cache_creation, r.latency] {
                    w.u64(v)?;
                }
                w.i64(r.cost)?;
            }
            w.len(h.lat.len())?;
            for l in &h.lat {
                for v in [l.tag_set, l.combo, l.bucket(), l.n()] {
                    w.u32(v)?;
                }
            }
            w.len(h.tools.len())?;
            for t in &h.tools {
                for v in [t.tag_set, t.combo, t.tool, t.calls] {
                    w.u32(v)?;
                }
                w.i64(t.cost)?;
                t.firsts.iter().try_for_each(|f| w.u32(*f as u32))?;
            }
            w.len(h.starts.len())?;
            for (ts, n) in &h.starts {
                w.u32(*ts)?;
                w.i64(i64::from(*n))?;
            }
        }
        w.interner(&p.traces.routes)?;
        w.len(p.traces.len())?;
        for (seq, e) in p.traces.iter() {
            w.u32(seq)?;
            for v in [e.start_ms, e.tokens, e.cost] {
                w.i64(v)?;
            }
            for v in [e.tag_set, e.calls, e.route, e.mask] {
                w.u32(v)?;
            }
        }
    }
    w.0.write_all(MAGIC)?;
    Ok(())
}

/// Reads a snapshot: the aggregate and the mark it was taken with.
pub fn read(input: &mut impl Read) -> io::Result<(Cube, Vec<i64>)> {
    let mut r = R(input);
    if &r.bytes::<8>()? != MAGIC {
        return Err(bad("header"));
    }
    let marks = r.len()?;
    let mark = (0..marks).map(|_| r.i64()).collect::<io::Result<Vec<_>>>()?;
    let mut cube = Cube::default();
    for _ in 0..r.len()? {
        let id = r.i64()?;
        let mut p = ProjectCube {
            providers: r.interner()?,
            models: r.interner()?,
            agents: r.interner()?,
            tools: r.interner()?,
            users: r.interner()?,
            keys: r.interner()?,
            values: r.interner()?,
            ..ProjectCube::default()
        };
        for _ in 0..r.len()? {
            let key = (r.u32()?, r.u32()?, r.u32()?);
            p.combo_ids.insert(key, p.combos.len() as u32);
            p.combos.push(key);
        }
        for _ in 0..r.len()? {
            let (db_id, user, live) = (r.i64()?, r.u32()?, r.u32()? != 0);
            let kv = (0..r.len()?).map(|_| Ok((r.u32()?, r.u32()?))).collect::<io::Result<Vec<_>>>()?;
            if live {
                p.tag_index.insert(db_id, p.tag_sets.len() as u32);
            }
            p.user_of.push(user);
            p.tag_sets.push(TagSet { db_id, user, kv, live });
        }
        for _ in 0..r.len()? {
            let hour = r.i64()?;
            let mut h = Hour::default();
            let n = r.len()?;
            h.rows = super::rows::Rows::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let mut row = Row {
                    tag_set: r.u32()?,
                    user: r.u32()?,
                    combo: r.u32()?,
                    calls: r.u32()?,
                    errors: r.u32()?,
                    unpriced: r.u32()?,
                    last_ms: r.u32()?,
                    ..Row::default()
                };
                for f in &mut row.firsts {
                    *f = r.u32()? as i32;
                }
                row.input = r.u64()?;
                row.output = r.u64()?;
                row.cache_read = r.u64()?;
                row.cache_creation = r.u64()?;
                row.latency = r.u64()?;
                row.cost = r.i64()?;
                h.rows.push(row);
            }
            let n = r.len()?;
            h.lat = sized(n);
            for _ in 0..n {
                let (tag_set, combo, bucket, calls) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
                LatRow::push(&mut h.lat, tag_set, combo, bucket, u64::from(calls));
            }
            let n = r.len()?;
            h.tools = sized(n);
            for _ in 0..n {
                let mut t = ToolRow {
                    tag_set: r.u32()?,
                    combo: r.u32()?,
                    tool: r.u32()?,
                    calls: r.u32()?,
                    cost: r.i64()?,
                    ..ToolRow::default()
                };
                for f in &mut t.firsts {
                    *f = r.u32()? as i32;
                }
                h.tools.push(t);
            }
            for _ in 0..r.len()? {
                let (tag_set, n) = (r.u32()?, r.i64()?);
                super::push_starts(&mut h.starts, tag_set, n);
            }
            h.compacted = h.rows.len() + h.starts.len();
            h.note_combos();
            h.note_sorted();
            if h.sorted < h.rows.len() {
                h.sort_rows();
            }
            p.hours.insert(hour, h);
        }
        p.traces.routes = r.interner()?;
        for _ in 0..r.len()? {
            let seq = r.u32()?;
            let (start_ms, tokens, cost) = (r.i64()?, r.i64()?, r.i64()?);
            let (tag_set, calls, route, mask) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            if tag_set == super::NONE {
                return Err(bad("trace"));
            }
            p.traces.put(seq, TraceEntry { start_ms, tokens, cost, tag_set, calls, route, mask });
        }
        check(&p)?;
        cube.projects.insert(id, p);
    }
    if &r.bytes::<8>()? != MAGIC {
        return Err(bad("trailer"));
    }
    Ok((cube, mark))
}

/// Every id a row holds points inside its dictionaries (a damaged file fails here, not later
/// with an out-of-bounds index in a view).
fn check(p: &ProjectCube) -> io::Result<()> {
    let (t, c, u) = (p.tag_sets.len() as u32, p.combos.len() as u32, p.users.len() as u32);
    let user_ok = |x: u32| x == super::NONE || x < u;
    let dims_ok = p.combos.iter().all(|(a, b, g)| {
        (*a as usize) < p.providers.len() && (*b as usize) < p.models.len() && (*g as usize) < p.agents.len()
    });
    let tags_ok = p.tag_sets.iter().all(|ts| {
        user_ok(ts.user)
            && ts.kv.iter().all(|(k, v)| (*k as usize) < p.keys.len() && (*v as usize) < p.values.len())
    });
    let hours_ok = p.hours.values().all(|h| {
        h.rows.tag_set.iter().all(|x| *x < t)
            && h.rows.combo.iter().all(|x| *x < c)
            && h.rows.user.iter().all(|x| user_ok(*x))
            && h.lat.iter().all(|l| l.tag_set < t && l.combo < c)
            && h.tools.iter().all(|x| x.tag_set < t && x.combo < c && (x.tool as usize) < p.tools.len())
            && h.starts.iter().all(|(ts, _)| *ts < t)
    });
    let routes = p.traces.routes.len() as u32;
    let traces_ok =
        p.traces.iter().all(|(_, e)| e.tag_set < t && (e.route == super::NONE || e.route < routes));
    if dims_ok && tags_ok && hours_ok && traces_ok { Ok(()) } else { Err(bad("ids")) }
}

/// Index maps rebuilt by `read` are the ones `apply` keeps; nothing else is derived.
#[cfg(test)]
mod tests {
    use super::super::traces::TraceFact;
    use super::super::{CallFact, Delta};
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_snapshot_reads_back_as_the_same_aggregate() {
        let mut cube = Cube::default();
        let p = cube.project(3);
        p.apply(&Delta {
            tag_sets: vec![(
                7,
                BTreeMap::from([("userId".into(), "u1".into()), ("plan".into(), "pro".into())]),
            )],
            calls: (0..50)
                .map(|i| CallFact {
                    tag_set: 7,
                    ts_ms: 1_800_000_000_000 + i * 600_000,
                    provider: "openai".into(),
                    model: ["gpt-4o", "gpt-4o-mini"][i as usize % 2].into(),
                    agent: "a".into(),
                    input: 10 + i as u64,
                    output: 3,
                    cost: (i % 3 != 0).then_some(1_000 * i),
                    latency_ms: Some(100 * i),
                    firsts: (i % 4) as u8,
                    tools: vec![("search".into(), 1)],
                    ..CallFact::default()
                })
                .collect(),
            starts: vec![(500_000, 7, 4)],
            traces: (0..3)
                .map(|i| TraceFact {
                    seq: 5000 * i,
                    new: true,
                    tag_set: 7,
                    start_ms: 1_800_000_000_000 + i64::from(i),
                    route: (i > 0).then(|| format!("/r{i}")),
                    calls: 2,
                    tokens: 30,
                    cost: -5 + i64::from(i),
                    providers: vec!["openai".into()],
                    agents: vec!["a".into()],
                })
                .collect(),
            ..Delta::default()
        });
        let mut bytes = Vec::new();
        write(&cube, &[1, 2, 3], &mut bytes).expect("write");
        let (back, mark) = read(&mut bytes.as_slice()).expect("read");
        assert_eq!(mark, vec![1, 2, 3]);
        let (a, b) = (&cube.projects[&3], &back.projects[&3]);
        assert_eq!(a.hours.keys().collect::<Vec<_>>(), b.hours.keys().collect::<Vec<_>>());
        for (x, y) in a.hours.values().zip(b.hours.values()) {
            // Rows come back in order (`Row::order`), whatever order they were saved in.
            let mut rows: Vec<Row> = x.rows.iter().collect();
            rows.sort_by_key(Row::order);
            assert_eq!(y.rows.iter().collect::<Vec<_>>(), rows);
            assert_eq!(y.sorted, y.rows.len());
            assert_eq!((&x.lat, &x.tools, &x.starts), (&y.lat, &y.tools, &y.starts));
        }
        assert_eq!(a.combos, b.combos);
        assert_eq!(a.user_of, b.user_of);
        assert_eq!(b.tag_index.get(&7), Some(&0));
        assert_eq!(a.traces.iter().collect::<Vec<_>>(), b.traces.iter().collect::<Vec<_>>());
        assert_eq!(b.traces.len(), 3);
        assert_eq!(b.traces.routes.name(b.traces.get(10_000).map_or(0, |e| e.route)), "/r2");
        // A deleted user's name is left out of the file; its id stays taken.
        let gone = cube.project(3);
        gone.apply(&Delta {
            tag_sets: vec![(8, BTreeMap::from([("userId".into(), "gone-user-4711".into())]))],
            calls: vec![CallFact { tag_set: 8, ts_ms: 1_800_000_000_000, ..CallFact::default() }],
            ..Delta::default()
        });
        gone.remove_tag_sets(&[8]);
        let mut after = Vec::new();
        write(&cube, &[1], &mut after).expect("write");
        assert!(!after.windows(14).any(|w| w == b"gone-user-4711"), "a deleted user's name is in the file");
        let (back2, _) = read(&mut after.as_slice()).expect("read");
        let p2 = &back2.projects[&3];
        assert_eq!((p2.users.len(), p2.users.name(1), p2.users.get("u1")), (2, "", Some(0)));
        // A truncated or damaged file is an error, never a panic.
        assert!(read(&mut &bytes[..bytes.len() - 3]).is_err());
        let mut damaged = bytes.clone();
        let at = damaged.len() / 2;
        damaged[at] ^= 0xff;
        let _ = read(&mut damaged.as_slice());
    }
}

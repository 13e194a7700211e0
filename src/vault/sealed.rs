//! A stream sealed in chunks: each chunk is AES-256-GCM encrypted and authenticated on its own, so a recording
//! is written as it arrives (a crash loses at most the chunk being filled), any byte range is read by opening
//! only the chunks it spans, and a changed, reordered or swapped chunk is detected.
//!
//! Layout: chunks one after another, each `u32` big-endian length of the ciphertext, then the ciphertext with
//! its tag. Chunk `i` is sealed with the nonce `i` (64-bit big-endian) followed by a 32-bit flag that is 1 for
//! the stream's final chunk, so a stream cut short is told apart from a finished one. The associated data is
//! the stream's name (the recording id), so a file moved to another row does not open. Each stream has its own
//! data key, so counter nonces never repeat under one key.

use std::io::{self, Read, Seek, SeekFrom, Write};

use ring::aead::{Aad, LessSafeKey, Nonce};

use super::VaultError;

/// Plaintext bytes per chunk at most.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const HEADER: usize = 4;

fn nonce(index: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes[8..].copy_from_slice(&u32::from(last).to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

pub struct SealedWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    name: Vec<u8>,
    index: u64,
    buffer: Vec<u8>,
    /// Plaintext bytes taken so far.
    taken: u64,
}

impl<W: Write> SealedWriter<W> {
    pub fn new(out: W, key: LessSafeKey, name: &str) -> Self {
        Self { out, key, name: name.as_bytes().to_vec(), index: 0, buffer: Vec::with_capacity(CHUNK), taken: 0 }
    }

    /// Plaintext bytes written so far.
    pub fn len(&self) -> u64 {
        self.taken
    }

    pub fn is_empty(&self) -> bool {
        self.taken == 0
    }

    /// Takes plaintext; every full chunk is sealed and written at once.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.taken += data.len() as u64;
        while !data.is_empty() {
            let room = CHUNK - self.buffer.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buffer.extend_from_slice(now);
            data = rest;
            if self.buffer.len() == CHUNK {
                self.seal(false)?;
            }
        }
        Ok(())
    }

    /// Seals what is buffered as a chunk of its own, so it survives a crash; nothing when nothing is buffered.
    pub fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() { Ok(()) } else { self.seal(false) }
    }

    /// Seals the final chunk (possibly empty) and hands the output back.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let mut chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.key
            .seal_in_place_append_tag(nonce(self.index, last), Aad::from(&self.name), &mut chunk)
            .map_err(|_| io::Error::other("sealing failed"))?;
        self.out.write_all(&(chunk.len() as u32).to_be_bytes())?;
        self.out.write_all(&chunk)?;
        self.out.flush()?;
        self.index += 1;
        Ok(())
    }
}

/// Where each chunk lies: its offset in the file and its plaintext length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkIndex {
    chunks: Vec<(u64, usize)>,
}

impl ChunkIndex {
    /// Reads the chunk lengths of a sealed file (not the chunks). A chunk cut off by a crash at the end is
    /// left out; a length no chunk can have is an error.
    pub fn scan<R: Read + Seek>(file: &mut R) -> Result<Self, VaultError> {
        let size = file.seek(SeekFrom::End(0)).map_err(io_error)?;
        let mut chunks = Vec::new();
        let mut at = 0u64;
        while at + HEADER as u64 <= size {
            file.seek(SeekFrom::Start(at)).map_err(io_error)?;
            let mut len = [0u8; HEADER];
            file.read_exact(&mut len).map_err(io_error)?;
            let len = u32::from_be_bytes(len) as usize;
            if !(TAG..=CHUNK + TAG).contains(&len) {
                return Err(VaultError::Malformed(format!("chunk {} claims {len} bytes", chunks.len())));
            }
            if at + (HEADER + len) as u64 > size {
                break;
            }
            chunks.push((at, len - TAG));
            at += (HEADER + len) as u64;
        }
        Ok(Self { chunks })
    }

    /// Plaintext bytes in the stream.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|(_, n)| *n as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index as bytes (offset `u64` and plaintext length `u32`, big-endian, per chunk), kept beside a stream
    /// in an object store so a reader needs no request per chunk to find them.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|(offset, len)| offset.to_be_bytes().into_iter().chain((*len as u32).to_be_bytes())).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        if !bytes.len().is_multiple_of(12) {
            return Err(VaultError::Malformed("chunk index length".into()));
        }
        let chunks = bytes
            .chunks_exact(12)
            .map(|c| (u64::from_be_bytes(c[..8].try_into().unwrap_or_default()), u32::from_be_bytes(c[8..].try_into().unwrap_or_default()) as usize))
            .collect();
        Ok(Self { chunks })
    }
}

/// Reads plaintext ranges of a sealed file.
pub struct SealedReader<R: Read + Seek> {
    file: R,
    key: LessSafeKey,
    name: Vec<u8>,
    index: ChunkIndex,
}

impl<R: Read + Seek> SealedReader<R> {
    pub fn open(mut file: R, key: LessSafeKey, name: &str) -> Result<Self, VaultError> {
        let index = ChunkIndex::scan(&mut file)?;
        Ok(Self::with_index(file, key, name, index))
    }

    /// A reader over a stream whose chunk index is known (kept beside it).
    pub fn with_index(file: R, key: LessSafeKey, name: &str, index: ChunkIndex) -> Self {
        Self { file, key, name: name.as_bytes().to_vec(), index }
    }

    /// Plaintext bytes in the stream.
    pub fn len(&self) -> u64 {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the writer finished the stream (false after a crash: everything sealed before it still reads).
    pub fn finished(&mut self) -> Result<bool, VaultError> {
        let Some(last) = self.index.chunks.len().checked_sub(1) else { return Ok(false) };
        self.chunk(last).map(|(_, finished)| finished)
    }

    /// The plaintext of `start..end` (clamped to the stream), each chunk it spans authenticated.
    pub fn read_range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, VaultError> {
        let end = end.min(self.len());
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        let mut chunk_start = 0u64;
        for i in 0..self.index.chunks.len() {
            let chunk_len = self.index.chunks[i].1 as u64;
            let chunk_end = chunk_start + chunk_len;
            if chunk_end > start && chunk_start < end {
                let (plain, _) = self.chunk(i)?;
                let from = start.saturating_sub(chunk_start) as usize;
                let to = (end.min(chunk_end) - chunk_start) as usize;
                out.extend_from_slice(&plain[from..to]);
            }
            if chunk_end >= end {
                break;
            }
            chunk_start = chunk_end;
        }
        Ok(out)
    }

    /// Chunk `i` opened, and whether it is the final one.
    fn chunk(&mut self, i: usize) -> Result<(Vec<u8>, bool), VaultError> {
        let (offset, plain_len) = self.index.chunks[i];
        self.file.seek(SeekFrom::Start(offset + HEADER as u64)).map_err(io_error)?;
        let mut sealed = vec![0u8; plain_len + TAG];
        self.file.read_exact(&mut sealed).map_err(io_error)?;
        let physical_last = i + 1 == self.index.chunks.len();
        // Only the physically last chunk may carry the final flag; it lacks it when the writer crashed.
        for last in [true, false] {
            if last && !physical_last {
                continue;
            }
            let mut attempt = sealed.clone();
            if let Ok(plain) = self.key.open_in_place(nonce(i as u64, last), Aad::from(&self.name), &mut attempt) {
                return Ok((plain.to_vec(), last));
            }
        }
        Err(VaultError::Damaged(i as u64))
    }
}

fn io_error(e: io::Error) -> VaultError {
    VaultError::Malformed(e.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::vault::Vault;

    fn key() -> LessSafeKey {
        let vault = Vault::new(&secrecy::SecretString::from("k".repeat(40)), &[]).unwrap();
        let (key, wrapped) = vault.new_data_key().unwrap();
        // The same data key, as a reader gets it back from the row.
        assert_eq!(vault.unwrap(&wrapped).unwrap().0, key.0);
        key.cipher()
    }

    fn plaintext(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn sealed(key: &LessSafeKey, data: &[u8], pieces: usize, finish: bool) -> Vec<u8> {
        let mut writer = SealedWriter::new(Vec::new(), key.clone(), "rec-1");
        for piece in data.chunks(data.len().div_ceil(pieces).max(1)) {
            writer.write(piece).unwrap();
            writer.flush_chunk().unwrap();
        }
        if finish { writer.finish().unwrap() } else { writer.out }
    }

    #[test]
    fn any_range_reads_back_across_chunk_boundaries() {
        let key = key();
        let data = plaintext(3 * CHUNK + 1234);
        let file = sealed(&key, &data, 5, true);
        assert!(!file.windows(64).any(|w| data.windows(64).next() == Some(w)), "no plaintext on disk");
        let index = ChunkIndex::scan(&mut Cursor::new(&file)).unwrap();
        assert_eq!(ChunkIndex::from_bytes(&index.to_bytes()).unwrap(), index);
        let mut reader = SealedReader::with_index(Cursor::new(file), key, "rec-1", index);
        assert_eq!(reader.len(), data.len() as u64);
        assert!(reader.finished().unwrap());
        for (start, end) in [(0, 10), (CHUNK as u64 - 5, CHUNK as u64 + 5), (100, 3 * CHUNK as u64), (0, u64::MAX)] {
            let end_clamped = end.min(data.len() as u64);
            assert_eq!(reader.read_range(start, end).unwrap(), &data[start as usize..end_clamped as usize], "{start}..{end}");
        }
    }

    #[test]
    fn a_flipped_byte_a_wrong_name_or_key_is_detected() {
        let key = key();
        let data = plaintext(2 * CHUNK);
        let mut file = sealed(&key, &data, 1, true);
        let second = 2 * HEADER + CHUNK + TAG + 10;
        file[second] ^= 0x01;
        let mut reader = SealedReader::open(Cursor::new(file.clone()), key.clone(), "rec-1").unwrap();
        assert_eq!(reader.read_range(0, 10).unwrap(), &data[..10], "undamaged chunks still read");
        assert_eq!(reader.read_range(CHUNK as u64 + 10, CHUNK as u64 + 20), Err(VaultError::Damaged(1)));
        file[second] ^= 0x01;
        let mut elsewhere = SealedReader::open(Cursor::new(file.clone()), key, "rec-2").unwrap();
        assert_eq!(elsewhere.read_range(0, 1), Err(VaultError::Damaged(0)));
        let mut stranger = SealedReader::open(Cursor::new(file), self::key(), "rec-1").unwrap();
        assert_eq!(stranger.read_range(0, 1), Err(VaultError::Damaged(0)));
    }

    #[test]
    fn a_crash_loses_at_most_the_chunk_being_written() {
        let key = key();
        let data = plaintext(CHUNK + 500);
        let mut file = sealed(&key, &data, 4, false);
        let whole = file.len();
        // A crash in the middle of writing the next chunk leaves half of it.
        file.extend_from_slice(&(1000u32).to_be_bytes());
        file.extend_from_slice(&[7u8; 300]);
        let mut reader = SealedReader::open(Cursor::new(file), key.clone(), "rec-1").unwrap();
        assert_eq!(reader.read_range(0, u64::MAX).unwrap(), data);
        assert!(!reader.finished().unwrap(), "a stream that was never finished says so");
        // Cutting a finished stream's final chunk off is not mistaken for a finished stream either.
        let finished = sealed(&key, &data, 4, true);
        assert!(finished.len() > whole);
        let mut cut = SealedReader::open(Cursor::new(finished[..whole].to_vec()), key, "rec-1").unwrap();
        assert!(!cut.finished().unwrap());
    }
}

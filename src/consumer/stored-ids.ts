import type { Warehouse } from "../warehouse/warehouse.ts";

/** Which event_ids the events table may hold: never "no" for one it holds. */
export interface StoredIds {
  /** False only for an id the table surely does not hold. */
  mayHold(id: string): boolean;
  /** Notes an id about to be inserted (before the insert: a failed one only costs a question). */
  add(id: string): void;
  /** Bytes the filters take. */
  readonly bytes: number;
}

/** Bits per id and hashes per id: at most about 1% of new ids look stored (2-7 in 200,000 measured). */
const BITS_PER_ID = 10;
const HASHES = 7;
/** The first filter holds at least this many ids, and all filters together at most MAX_BYTES. */
const MIN_IDS = 1 << 20;
const MAX_BYTES = 64 << 20;
/** Ids read from the table per query while loading (tests read fewer). */
const PAGE = 250_000;

/**
 * A Bloom filter over every event_id in the events table, for a consumer
 * that is the table's one writer (chDB, in its process) and so sees every
 * id that reaches it. Its dedupe store forgets (in-process), so it asked
 * the warehouse about every id it let through; 10,000 random ids touch
 * nearly every granule of a table sorted by event_id, so each question
 * read the whole event_id column: 61 ms of CPU at 1M events, 193 at 10M,
 * for 10,000 ids. Now only the ids the filter may hold are asked: repeats,
 * and a few new ids.
 *
 * It fills from the table in the background, so the consumer starts at
 * once; until it is full, it says "maybe" to every id (every id is asked,
 * as before). Each id is added before its insert. When a filter is full, a
 * new one twice its size takes the new ids (a scalable Bloom filter), up
 * to MAX_BYTES: past that the last one fills up and more new ids are
 * asked, but none is missed.
 */
export function loadStoredIds(
  warehouse: Warehouse,
  page = PAGE,
): StoredIds & { readonly loaded: Promise<void> } {
  let ready = false;
  let ids: StoredIds | undefined;
  const pending: string[] = [];
  const loaded = (async () => {
    const [{ n } = { n: "0" }] = await warehouse.query<{ n: string }>(
      `SELECT count() AS n FROM ${warehouse.db}.events`,
    );
    const filter = createStoredIds(Math.max(MIN_IDS, 2 * Number(n)));
    // Ids added while the count was asked.
    for (const id of pending.splice(0)) filter.add(id);
    ids = filter;
    const words = new Uint32Array(4);
    // In event_id order, a page at a time: the table's sorting key, so each
    // page is a range of it. RowBinary: 16 bytes an id, not its text.
    let after: string | undefined;
    for (;;) {
      const rows = await warehouse.queryBytes(
        `SELECT event_id FROM ${warehouse.db}.events
         ${after === undefined ? "" : "WHERE event_id > toUUID({after:String})"}
         ORDER BY event_id LIMIT ${page}`,
        after === undefined ? {} : { after },
        "RowBinary",
      );
      for (let at = 0; at + 16 <= rows.length; at += 16) {
        rowBinaryWords(rows, at, words);
        filter.addWords(words);
      }
      if (rows.length < page * 16) break;
      after = uuidText(words);
    }
    ready = true;
  })();
  return {
    mayHold: (id) => !ready || (ids as StoredIds).mayHold(id),
    add(id) {
      if (ids === undefined) pending.push(id);
      else ids.add(id);
    },
    get bytes() {
      return ids?.bytes ?? 0;
    },
    loaded,
  };
}

/** An empty {@link StoredIds} sized for `capacity` ids in its first filter. */
export function createStoredIds(
  capacity: number,
): StoredIds & { addWords(words: Uint32Array): void } {
  const filters: Filter[] = [newFilter(capacity)];
  const words = new Uint32Array(4);
  const at = new Uint32Array(HASHES);
  const addWords = (w: Uint32Array) => {
    let f = filters[filters.length - 1] as Filter;
    if (f.count >= f.capacity && bytesOf(filters) + f.bits.byteLength * 2 <= MAX_BYTES) {
      f = newFilter(f.capacity * 2);
      filters.push(f);
    }
    positions(w, at);
    const { bits, mask } = f;
    for (let i = 0; i < HASHES; i++) {
      const p = (at[i] as number) & mask;
      bits[p >>> 5] = (bits[p >>> 5] as number) | (1 << (p & 31));
    }
    f.count++;
  };
  return {
    mayHold(id) {
      if (!textWords(id, words)) return true;
      positions(words, at);
      for (const f of filters) if (holds(f, at)) return true;
      return false;
    },
    add(id) {
      // Text that is no UUID is never stored (the column is a UUID): mayHold asks about it anyway.
      if (textWords(id, words)) addWords(words);
    },
    addWords,
    get bytes() {
      return bytesOf(filters);
    },
  };
}

interface Filter {
  bits: Uint32Array;
  /** Bit positions are hashes masked to the filter's size (a power of two). */
  mask: number;
  capacity: number;
  count: number;
}

function newFilter(capacity: number): Filter {
  let size = 1 << 15;
  while (size < capacity * BITS_PER_ID && size < 2 ** 31) size *= 2;
  return { bits: new Uint32Array(size / 32), mask: size - 1, capacity, count: 0 };
}

function holds(f: Filter, at: Uint32Array): boolean {
  for (let i = 0; i < HASHES; i++) {
    const p = (at[i] as number) & f.mask;
    if (((f.bits[p >>> 5] as number) & (1 << (p & 31))) === 0) return false;
  }
  return true;
}

function bytesOf(filters: readonly Filter[]): number {
  return filters.reduce((n, f) => n + f.bits.byteLength, 0);
}

/** The HASHES bit positions (before masking) of a UUID's four 32-bit words: double hashing over murmur3's finalizer. */
function positions(w: Uint32Array, out: Uint32Array) {
  const h1 = fmix((w[0] as number) ^ Math.imul(w[2] as number, 0x9e3779b1));
  const h2 = fmix((w[1] as number) ^ Math.imul(w[3] as number, 0x9e3779b1)) | 1;
  for (let i = 0; i < HASHES; i++) out[i] = (h1 + Math.imul(i, h2)) >>> 0;
}

function fmix(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A UUID's text as its four 32-bit words (big-endian, as written), in any
 * spelling ClickHouse reads as the same UUID (case, hyphens, braces); false
 * for text that is not 32 hex digits.
 */
function textWords(id: string, out: Uint32Array): boolean {
  let digits = 0;
  let word = 0;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const v =
      c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (v < 0) {
      if (c === 45 || c === 123 || c === 125) continue; // - { }
      return false;
    }
    if (digits === 32) return false;
    word = (word << 4) | v;
    digits++;
    if (digits % 8 === 0) out[digits / 8 - 1] = word >>> 0;
  }
  return digits === 32;
}

/**
 * The words of the UUID at `at` in RowBinary: ClickHouse writes a UUID as
 * its two 64-bit halves, each little-endian, so the text's first four bytes
 * are the first half's high word.
 */
function rowBinaryWords(rows: Buffer, at: number, out: Uint32Array) {
  out[0] = rows.readUInt32LE(at + 4);
  out[1] = rows.readUInt32LE(at);
  out[2] = rows.readUInt32LE(at + 12);
  out[3] = rows.readUInt32LE(at + 8);
}

/** Words back to a UUID's text. */
function uuidText(w: Uint32Array): string {
  const hex = Array.from(w, (x) => x.toString(16).padStart(8, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Browser-side validation of allowed CIDR blocks, mirroring the server's rules:
// IPv4 or IPv6, a CIDR block or a bare address (/32 or /128), no host bits set,
// at most MAX_BLOCKS blocks. The server checks again; this only spares a round trip
// and gives a precise message (with the network form to use) before anything is sent.

export const MAX_BLOCKS = 100;

/** Parse a dotted-quad IPv4 address into a BigInt, or null. */
export function parseIPv4(text) {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return null;
    // Leading zeros are ambiguous (octal in some parsers) and refused by the server.
    if (part.length > 1 && part[0] === "0") return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

/** Parse an IPv6 address (with optional "::" and trailing dotted IPv4) into a BigInt, or null. */
export function parseIPv6(text) {
  if (text.includes("%")) return null; // zone ids make no sense in a network block
  let rest = text;
  let tail = [];
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return null;
  if (text.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    rest = text.slice(0, lastColon + 1);
    if (!rest.endsWith("::")) rest = rest.slice(0, -1);
  }
  const halves = rest.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (s) => (s === "" ? [] : s.split(":"));
  const head = groupsOf(halves[0]);
  const back = halves.length === 2 ? groupsOf(halves[1]) : [];
  for (const g of [...head, ...back]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
  }
  const hex = (list) => list.map((g) => parseInt(g, 16));
  const count = head.length + back.length + tail.length;
  let groups;
  if (halves.length === 2) {
    if (count > 7) return null; // "::" stands for at least one group
    groups = [...hex(head), ...new Array(8 - count).fill(0), ...hex(back), ...tail];
  } else {
    if (count !== 8) return null;
    groups = [...hex(head), ...tail];
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

export function formatIPv4(value) {
  const out = [];
  for (let shift = 24n; shift >= 0n; shift -= 8n) out.push(String((value >> shift) & 0xffn));
  return out.join(".");
}

/** RFC 5952 text form: lower case, longest run (two or more) of zero groups as "::". */
export function formatIPv6(value) {
  const groups = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}

/**
 * Check one entry. Returns {ok: true, block} with the block as typed (trimmed),
 * or {ok: false, message} explaining what is wrong.
 */
export function validateCidr(entry) {
  const text = entry.trim();
  const shown = `“${text}”`;
  const pieces = text.split("/");
  if (pieces.length > 2 || text === "") {
    return { ok: false, message: `${shown} is not an IPv4 or IPv6 address or CIDR block.` };
  }
  const [addrText, prefixText] = pieces;
  const v6 = addrText.includes(":");
  const bits = v6 ? 128 : 32;
  const addr = v6 ? parseIPv6(addrText) : parseIPv4(addrText);
  if (addr === null) {
    return {
      ok: false,
      message: `${shown} is not an IPv4 or IPv6 address or CIDR block (for example 10.0.0.0/8 or 2001:db8::/32).`,
    };
  }
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      return {
        ok: false,
        message: `${shown}: the prefix length must be a number from 0 to ${bits}.`,
      };
    }
    prefix = Number(prefixText);
  }
  const all = (1n << BigInt(bits)) - 1n;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const network = addr & (all ^ hostMask);
  if (network !== addr) {
    const suggestion = `${v6 ? formatIPv6(network) : formatIPv4(network)}/${prefix}`;
    return {
      ok: false,
      message: `${shown} has host bits set; did you mean ${suggestion}?`,
      suggestion,
    };
  }
  return { ok: true, block: text };
}

/**
 * Check the text of the CIDR input: one block per line (commas and spaces also separate).
 * Returns {blocks, errors}: the distinct valid blocks in order, and one message per problem.
 */
export function validateCidrList(text) {
  const entries = text.split(/[\s,]+/).filter((e) => e !== "");
  const blocks = [];
  const errors = [];
  for (const entry of entries) {
    const result = validateCidr(entry);
    if (!result.ok) errors.push(result.message);
    else if (!blocks.includes(result.block)) blocks.push(result.block);
  }
  if (blocks.length > MAX_BLOCKS) {
    errors.push(`At most ${MAX_BLOCKS} CIDR blocks are allowed (${blocks.length} given).`);
  }
  return { blocks, errors };
}

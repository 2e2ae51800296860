import { describe, expect, it } from "vitest";
import { backoffMs, insertErrorKind } from "./insert-errors.ts";

describe("insert errors", () => {
  it("calls unreadable rows bad data, and everything else retryable", () => {
    const ch = (type: string) => Object.assign(new Error(type), { type });
    expect(insertErrorKind(ch("CANNOT_PARSE_DATETIME"))).toBe("bad-data");
    expect(insertErrorKind(ch("CANNOT_PARSE_UUID"))).toBe("bad-data");
    expect(insertErrorKind(ch("CANNOT_PARSE_INPUT_ASSERTION_FAILED"))).toBe("bad-data");
    expect(insertErrorKind(ch("TYPE_MISMATCH"))).toBe("bad-data");
    expect(insertErrorKind(ch("TOO_MANY_PARTS"))).toBe("retryable");
    expect(insertErrorKind(ch("TIMEOUT_EXCEEDED"))).toBe("retryable");
    expect(insertErrorKind(ch("MEMORY_LIMIT_EXCEEDED"))).toBe("retryable");
    expect(insertErrorKind(ch("UNKNOWN_TABLE"))).toBe("retryable");
    expect(insertErrorKind(Object.assign(new Error("connect"), { code: "ECONNREFUSED" }))).toBe(
      "retryable",
    );
    expect(insertErrorKind("a string")).toBe("retryable");
  });

  it("backs off doubling, capped, within the upper half of each step", () => {
    expect(backoffMs(0, [100, 5000], () => 0)).toBe(50);
    expect(backoffMs(0, [100, 5000], () => 1)).toBe(100);
    expect(backoffMs(3, [100, 5000], () => 1)).toBe(800);
    expect(backoffMs(20, [100, 5000], () => 0)).toBe(2500);
    expect(backoffMs(20, [100, 5000], () => 1)).toBe(5000);
  });
});

import { describe, expect, it } from '@jest/globals';
import { sessionIdToDecimal, zxidToDecimal } from '../../../zookeeper/session.js';

describe('64-bit ids from the zookeeper binding', () => {
  it('turns the hex session id into an exact decimal string, beyond 2^53', () => {
    expect(sessionIdToDecimal('100000a2b3c0004')).toBe('72057637712953348');
    expect(sessionIdToDecimal('ffffffffffffffff')).toBe('18446744073709551615');
    expect(sessionIdToDecimal('0')).toBe('0');
  });

  it('refuses what is not a hex session id', () => {
    expect(() => sessionIdToDecimal('0x12')).toThrow('expected a hexadecimal session id, got "0x12"');
  });

  it('gives zxids as decimal strings and refuses a double the binding may have rounded', () => {
    expect(zxidToDecimal(4294967301)).toBe('4294967301');
    expect(zxidToDecimal(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    expect(() => zxidToDecimal(2 ** 53)).toThrow(RangeError);
    expect(() => zxidToDecimal(-1)).toThrow('expected a zxid below 2^53');
  });
});

// Response codes at each boundary (vmm-and-faults.md §6.5, §4.2, §4.5): the internal codes
// SUCCESS 0, INVALID 1, FAILURE 2; the iommufd uAPI accepts only 0 and 1; a PCIe PRG Response
// (and the VT-d page group response) carries 0000b Success, 0001b Invalid Request, 1111b Response
// Failure, other values reserved.
import { PageResponseCode } from '@iommulab/driver-api';
import { describe, expect, it } from 'vitest';
import {
  fromPcieResponseCode,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  isIommufdResponseCode,
  PcieResponseCode,
  toPcieResponseCode,
} from '../src/index.js';

describe('iommufd response codes', () => {
  it('are SUCCESS 0 and INVALID 1; nothing else is accepted (FAILURE 2 was removed from the uAPI)', () => {
    expect([IOMMUFD_PAGE_RESP_SUCCESS, IOMMUFD_PAGE_RESP_INVALID]).toEqual([0, 1]);
    expect([0, 1, 2, 3, 0xf, -1, 0.5, 0xffff_ffff].map(isIommufdResponseCode)).toEqual([true, true, false, false, false, false, false, false]);
  });
});

describe('PCIe PRG Response codes', () => {
  it('are 0000b, 0001b and 1111b', () => {
    expect(PcieResponseCode).toEqual({ SUCCESS: 0, INVALID_REQUEST: 1, RESPONSE_FAILURE: 0xf });
  });

  it('map from the internal codes 0 / 1 / 2 to 0x0 / 0x1 / 0xF', () => {
    expect([PageResponseCode.SUCCESS, PageResponseCode.INVALID, PageResponseCode.FAILURE].map(toPcieResponseCode)).toEqual([0x0, 0x1, 0xf]);
  });

  it('map back to the internal codes; a reserved value (2..14) is undefined', () => {
    expect([0x0, 0x1, 0xf].map(fromPcieResponseCode)).toEqual([0, 1, 2]);
    for (let v = 2; v <= 14; v++) expect(fromPcieResponseCode(v)).toBeUndefined();
    expect(fromPcieResponseCode(16)).toBeUndefined();
  });
});

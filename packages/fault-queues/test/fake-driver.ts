/**
 * A small in-memory `IommuDriver` stand-in for the fault layer's tests: it records every
 * `pageResponse` call and lets a test push faults through the handlers subscribed with `onFault`,
 * as a real driver does when it drains its page request / event queues. Only `onFault` and
 * `pageResponse` behave; every other member of the interface is absent (the object is cast).
 */
import {
  FaultReason,
  PgFaultPerm,
  type FaultEvent,
  type IommuDevice,
  type IommuDriver,
  type IommuFault,
  type PageRequest,
  type PageResponse,
} from '@iommulab/driver-api';
import type { FaultHandlerLookup, FaultSink, IopfGroup } from '../src/index.js';

/** One recorded `pageResponse(dev, response)` call. */
export interface SentResponse {
  readonly dev: IommuDevice;
  readonly response: PageResponse;
}

export class FakeDriver {
  /** Every `pageResponse` call, in call order. */
  readonly sent: SentResponse[] = [];
  /** The handlers subscribed with `onFault` (subscription order). */
  readonly handlers = new Set<(fault: IommuFault) => unknown>();
  /** How many times `onFault` was called / its unsubscribe function was called. */
  subscribes = 0;
  unsubscribes = 0;
  /** When set, `pageResponse` rejects with it (the response is still recorded). */
  failResponses: Error | undefined;
  /** When set, `onFault` throws it (a driver already shut down). */
  failSubscribe: Error | undefined;
  /** Called synchronously inside each `pageResponse` (e.g. to push a new fault re-entrantly). */
  onResponse: ((response: PageResponse) => void) | undefined;

  /** The object handed to the code under test. */
  readonly driver: IommuDriver;

  constructor() {
    const self = this;
    const partial: Pick<IommuDriver, 'backendId' | 'pageResponse' | 'onFault'> = {
      backendId: 'fake',
      pageResponse(dev: IommuDevice, response: PageResponse): Promise<void> {
        self.sent.push({ dev, response: { ...response } });
        self.onResponse?.(response);
        return self.failResponses === undefined ? Promise.resolve() : Promise.reject(self.failResponses);
      },
      onFault(handler: (fault: IommuFault) => unknown): () => void {
        if (self.failSubscribe !== undefined) throw self.failSubscribe;
        self.subscribes++;
        self.handlers.add(handler);
        let on = true;
        return () => {
          if (!on) return;
          on = false;
          self.unsubscribes++;
          self.handlers.delete(handler);
        };
      },
    };
    this.driver = partial as unknown as IommuDriver;
  }

  /** Passes `fault` to every subscribed handler, as a drain does; returns what each returned. */
  push(fault: IommuFault): unknown[] {
    return [...this.handlers].map((h) => h(fault));
  }

  /** The responses sent, without the device (for exact comparisons). */
  responses(): PageResponse[] {
    return this.sent.map((s) => s.response);
  }
}

/** A device with requester id `rid` (only `rid` matters to the fault layer). */
export function device(rid: number): IommuDevice {
  return { rid, spec: { rid } as unknown as IommuDevice['spec'], maxPasidLog2: 20 };
}

/** A page request; defaults: no PASID, READ, address `0x1000 * (grpid + 1)`, not Last. */
export function pageRequest(init: Partial<Omit<PageRequest, 'kind'>> & { rid: number; grpid: number }): PageRequest {
  return {
    kind: 'page-request',
    rid: init.rid,
    pasid: init.pasid ?? -1,
    grpid: init.grpid,
    perm: init.perm ?? PgFaultPerm.READ,
    addr: init.addr ?? 0x1000 * (init.grpid + 1),
    last: init.last ?? false,
    ...(init.stall === undefined ? {} : { stall: init.stall }),
  };
}

/** A stop marker for (`rid`, `pasid`): Last, no Read, no Write. */
export function stopMarker(rid: number, pasid: number, grpid = 0): PageRequest {
  return { kind: 'page-request', rid, pasid, grpid, perm: 0, addr: 0, last: true };
}

/** A non-recoverable event of `rid`. */
export function faultEvent(rid: number, detail = 0x10, addr = 0x4000): FaultEvent {
  return {
    kind: 'event',
    rid,
    pasid: -1,
    addr,
    reason: FaultReason.TRANSLATION,
    detail,
    access: 1,
    raw: new Uint32Array([detail, rid, addr, 0]),
  };
}

/** A sink that keeps every group it is given (or refuses them all with `refuse`). */
export class RecordingSink implements FaultSink {
  readonly delivered: IopfGroup[] = [];
  readonly withdrawn: IopfGroup[] = [];
  refuse = false;

  deliver(group: IopfGroup): boolean {
    if (this.refuse) return false;
    this.delivered.push(group);
    return true;
  }

  withdraw(group: IopfGroup): void {
    this.withdrawn.push(group);
  }
}

/** A lookup routing every PASID to `sink` through the attachment `handle`. */
export function routeAllTo(sink: FaultSink | null, handle: object = {}): FaultHandlerLookup {
  return () => ({ handle, sink });
}

/**
 * PRI / page requests: the device-side entry point that queues PAGE_REQ records, and the log of
 * page responses software sent with CMD_PAGE_RESP (the model's "callback to the host bridge",
 * as the RISC-V IOMMU reference model has one).
 */
import type { PageResponse, PageResponseCodeValue } from '@iommulab/driver-api';

/** Bounded log of page responses (oldest dropped beyond the capacity). */
export class PageResponseLog {
  private readonly log: PageResponse[] = [];
  /** Responses received. */
  received = 0;
  /** Responses dropped from the log because it was full. */
  dropped = 0;
  /** Optional host-bridge callback, called for every response. */
  listener: ((r: PageResponse) => void) | undefined;

  /** @param capacity - responses kept for {@link PageResponseLog.take} */
  constructor(private readonly capacity = 4096) {}

  /** Records a response (from CMD_PAGE_RESP). */
  add(rid: number, pasid: number, grpid: number, code: number): void {
    const r: PageResponse = { rid, pasid, grpid, code: code as PageResponseCodeValue };
    this.received++;
    if (this.log.length >= this.capacity) {
      this.log.shift();
      this.dropped++;
    }
    this.log.push(r);
    const l = this.listener;
    if (l !== undefined) {
      try {
        l(r);
      } catch {
        // A broken listener must not break command processing.
      }
    }
  }

  /** Returns and forgets every logged response. */
  take(): PageResponse[] {
    return this.log.splice(0, this.log.length);
  }

  /** Forgets everything. */
  reset(): void {
    this.log.length = 0;
  }
}

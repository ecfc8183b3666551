/**
 * A reader/writer semaphore for async code (the io_pagetable's `domains_rwsem`): map / unmap take
 * it for reading across their domain I/O, adding / removing a domain takes it for writing, so a
 * domain never misses an area created concurrently. Uncontended acquisition is synchronous
 * ({@link RwSem.tryRead}); waiting writers block new readers.
 */
export class RwSem {
  private readers = 0;
  private writer = false;
  private readonly waiters: { write: boolean; resolve: () => void }[] = [];

  /** Takes the read side if free right now. */
  tryRead(): boolean {
    if (this.writer || this.waiters.length > 0) return false;
    this.readers++;
    return true;
  }

  /** Takes the read side, waiting if needed. */
  read(): Promise<void> {
    if (this.tryRead()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ write: false, resolve }));
  }

  /** Releases the read side. */
  upRead(): void {
    this.readers--;
    this.wake();
  }

  /** Takes the write side, waiting if needed. */
  write(): Promise<void> {
    if (!this.writer && this.readers === 0 && this.waiters.length === 0) {
      this.writer = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ write: true, resolve }));
  }

  /** Releases the write side. */
  upWrite(): void {
    this.writer = false;
    this.wake();
  }

  private wake(): void {
    while (this.waiters.length > 0 && !this.writer) {
      const w = this.waiters[0];
      if (w.write) {
        if (this.readers > 0) return;
        this.waiters.shift();
        this.writer = true;
        w.resolve();
        return;
      }
      this.waiters.shift();
      this.readers++;
      w.resolve();
    }
  }
}

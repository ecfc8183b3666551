/**
 * The per-context object table (drivers/iommu/iommufd/main.c: iommufd_object_alloc / finalize /
 * abort / remove, iommufd_get_object, iommufd_fops_release).
 *
 * - One u32 id namespace for every object type; ids are handed out lowest-free-first from 1
 *   (an xarray with XA_FLAGS_ALLOC1), so a destroyed object's id is reused.
 * - Two-phase creation: {@link ObjectTable.alloc} reserves a hidden id, {@link ObjectTable.finalize}
 *   makes the object visible; {@link ObjectTable.abort} releases the id of an object that never
 *   became visible. Lookups and DESTROY do not see hidden objects.
 * - `users`: 1 held by the table itself, +1 for every object (or fd / mmap) depending on it.
 *   Removal needs `users == 1`, else `EBUSY`.
 * - Tombstones: an id whose object was destroyed implicitly (a vDEVICE whose device went away)
 *   stays allocated until the context closes; lookups answer `ENOENT`.
 */
import { fail } from './errors.js';
import { failpoint } from './fail-nth.js';

/** Object kinds, as `enum iommufd_object_type`. */
export type ObjType =
  | 'ioas'
  | 'hwpt_paging'
  | 'hwpt_nested'
  | 'device'
  | 'access'
  | 'fault'
  | 'viommu'
  | 'vdevice'
  | 'veventq'
  | 'hw_queue'
  | 'selftest';

/** Base of every object in the table (`struct iommufd_object`). */
export abstract class IommufdObject {
  /** The object's id; 0 until {@link ObjectTable.alloc} gives it one. */
  id = 0;
  /** 1 for the table + 1 per dependent object / open file / mmap. */
  users = 1;
  /** @internal true once finalized (visible to lookups). */
  visible = false;
  /** The object kind. */
  abstract readonly type: ObjType;

  constructor() {
    // The object's kzalloc in iommufd_object_alloc may fail (fail_nth): it fails before the
    // subclass constructor runs, so nothing it would take (users references) is taken.
    failpoint(null, 'object.alloc');
  }
  /**
   * Releases what the object holds (the kernel's per-type `destroy` op). Called once, after the
   * object left the table. It must drop the `users` it holds on other objects.
   */
  abstract destroy(): void | Promise<void>;
}

/** Ids are 31-bit (xa_limit_31b). */
const ID_MAX = 0x7fff_ffff;

/** Marker for a tombstoned id. */
const TOMBSTONE = null;

/** The object table of one iommufd context. */
export class ObjectTable {
  private readonly slots = new Map<number, IommufdObject | null>();
  /** Freed ids below {@link nextFresh}, ascending. */
  private readonly freeIds: number[] = [];
  private nextFresh = 1;
  /** Called after an object left the table, before its destroy op (e.g. clears the VFIO compat IOAS). */
  onRemove: ((obj: IommufdObject) => void) | null = null;
  /**
   * Run once at the start of {@link close}, before any object is destroyed: owners outside the
   * table let go of the objects they hold a `users` reference on (src/access.ts: ACCESS objects).
   */
  readonly beforeClose = new Set<() => void | Promise<void>>();

  /** True when no id is in use (no object, no hidden reservation, no tombstone): `xa_empty`. */
  get empty(): boolean {
    return this.slots.size === 0;
  }

  /** Number of ids in use (objects, hidden reservations and tombstones). */
  get size(): number {
    return this.slots.size;
  }

  /** Reserves an id for `obj`, hidden until {@link finalize} (`iommufd_object_alloc`). */
  alloc<T extends IommufdObject>(obj: T): T {
    failpoint(null, 'object.id_alloc'); // xa_alloc may fail (fail_nth): nothing reserved then
    let id: number;
    if (this.freeIds.length > 0) id = this.freeIds.shift()!;
    else {
      if (this.nextFresh > ID_MAX) fail('EBUSY', `object table: all ${ID_MAX} ids are in use`);
      id = this.nextFresh++;
    }
    obj.id = id;
    obj.visible = false;
    this.slots.set(id, obj);
    return obj;
  }

  /** Makes a reserved object visible (`iommufd_object_finalize`). */
  finalize(obj: IommufdObject): void {
    if (this.slots.get(obj.id) !== obj) throw new Error(`object table: finalize of unknown object ${obj.id}`);
    obj.visible = true;
  }

  /** Releases the id of an object that was never finalized (`iommufd_object_abort`). */
  abort(obj: IommufdObject): void {
    if (this.slots.get(obj.id) !== obj || obj.visible) {
      throw new Error(`object table: abort of object ${obj.id} that is not a hidden reservation`);
    }
    this.releaseId(obj.id);
  }

  /** Runs the object's destroy op, then releases its id (`iommufd_object_abort_and_destroy`). */
  async abortAndDestroy(obj: IommufdObject): Promise<void> {
    try {
      await obj.destroy();
    } finally {
      this.abort(obj);
    }
  }

  /**
   * Typed lookup (`iommufd_get_object`): `ENOENT` for 0, an unknown id, a hidden or tombstoned
   * object, or an object of another type (`types` may list several; omit it for any type).
   */
  get<T extends IommufdObject = IommufdObject>(id: number, types?: ObjType | readonly ObjType[], what = 'object'): T {
    const obj = this.slots.get(id);
    if (obj === undefined || obj === TOMBSTONE || !obj.visible) return fail('ENOENT', `${what} id ${id} does not exist`);
    if (types !== undefined) {
      const ok = typeof types === 'string' ? obj.type === types : types.includes(obj.type);
      if (!ok) return fail('ENOENT', `${what} id ${id} is a ${obj.type}, not a ${String(types)}`);
    }
    return obj as T;
  }

  /** Like {@link get} but returns undefined instead of throwing. */
  find<T extends IommufdObject = IommufdObject>(id: number, types?: ObjType | readonly ObjType[]): T | undefined {
    const obj = this.slots.get(id);
    if (obj === undefined || obj === TOMBSTONE || !obj.visible) return undefined;
    if (types !== undefined) {
      const ok = typeof types === 'string' ? obj.type === types : types.includes(obj.type);
      if (!ok) return undefined;
    }
    return obj as T;
  }

  /**
   * Removes an object and destroys it (`iommufd_object_remove` + destroy): `ENOENT` when `id`
   * names no visible object (or not `expect`), `EBUSY` when others still use it (`users > 1`).
   * With `tombstone` the id stays reserved (answers ENOENT) until the context closes.
   */
  async remove(id: number, opts: { expect?: IommufdObject; tombstone?: boolean } = {}): Promise<void> {
    const obj = this.slots.get(id);
    if (obj === undefined || obj === TOMBSTONE || !obj.visible || (opts.expect !== undefined && obj !== opts.expect)) {
      fail('ENOENT', `object id ${id} does not exist`);
    }
    if (obj.users !== 1) fail('EBUSY', `object ${id} (${obj.type}) is still used by ${obj.users - 1} other users`);
    obj.users = 0;
    if (opts.tombstone) this.slots.set(id, TOMBSTONE);
    else this.releaseId(id);
    obj.visible = false;
    this.onRemove?.(obj);
    await obj.destroy();
  }

  /** Visible objects in id order. */
  *objects(): IterableIterator<IommufdObject> {
    const ids = [...this.slots.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const o = this.slots.get(id);
      if (o !== undefined && o !== TOMBSTONE && o.visible) yield o;
    }
  }

  /**
   * Destroys everything (`iommufd_fops_release`): repeatedly destroys, in id order, every object
   * with `users == 1` (leaves first) until none is left; then forgets tombstones.
   * Throws if the graph cannot make progress (a users-count bug).
   */
  async close(): Promise<void> {
    const hooks = [...this.beforeClose];
    this.beforeClose.clear();
    for (const hook of hooks) await hook();
    for (;;) {
      let destroyed = 0;
      let empty = true;
      const ids = [...this.slots.keys()].sort((a, b) => a - b);
      for (const id of ids) {
        const obj = this.slots.get(id);
        if (obj === undefined || obj === TOMBSTONE || !obj.visible) continue;
        empty = false;
        if (obj.users !== 1) continue;
        obj.users = 0;
        this.releaseId(id);
        obj.visible = false;
        this.onRemove?.(obj);
        await obj.destroy();
        destroyed++;
      }
      if (empty) break;
      if (destroyed === 0) {
        const left = [...this.objects()].map((o) => `${o.id}:${o.type}(users ${o.users})`).join(', ');
        throw new Error(`object table close: no progress, users-count bug; left: ${left}`);
      }
    }
    this.slots.clear();
    this.freeIds.length = 0;
    this.nextFresh = 1;
  }

  private releaseId(id: number): void {
    this.slots.delete(id);
    if (id === this.nextFresh - 1) {
      this.nextFresh--;
      // Shrink past trailing free ids so the free list stays below nextFresh.
      while (this.freeIds.length > 0 && this.freeIds[this.freeIds.length - 1] === this.nextFresh - 1) {
        this.freeIds.pop();
        this.nextFresh--;
      }
      return;
    }
    // Sorted insert.
    const f = this.freeIds;
    let lo = 0;
    let hi = f.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (f[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    f.splice(lo, 0, id);
  }
}

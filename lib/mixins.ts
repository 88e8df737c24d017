// Convenience base classes for user objects. Any object works as a user;
// these give the properties fastify-login reads sensible defaults.

/** A logged-in user: authenticated, active, not anonymous, identified by `id`. */
export class UserMixin {
  declare id?: string | number

  get isAuthenticated (): boolean { return true }
  get isActive (): boolean { return true }
  get isAnonymous (): boolean { return false }

  /** The id as a string; throws when the object has no usable `id`. */
  getId (): string {
    const id: unknown = this.id
    if (typeof id === 'number' && Number.isFinite(id)) return String(id)
    if (typeof id === 'string' && id !== '') return id
    throw new TypeError('UserMixin.getId(): the user has no `id` (a non-empty string or finite number); set `id` or override getId()')
  }

  /** Same id, both `UserMixin`s. */
  equals (other: unknown): boolean {
    if (!(other instanceof UserMixin)) return false
    return this.getId() === other.getId()
  }
}

/** The user of a request nobody is logged in on. */
export class AnonymousUserMixin {
  get isAuthenticated (): boolean { return false }
  get isActive (): boolean { return false }
  get isAnonymous (): boolean { return true }
  getId (): null { return null }
}

// The user and anonymous user types of the merged-user type tests, declared
// once for every test file of this project.
import { AnonymousUserMixin, UserMixin } from 'fastify-login'

export class User extends UserMixin {
  override readonly id: number
  readonly email: string

  constructor (id: number, email: string) {
    super()
    this.id = id
    this.email = email
  }
}

export class Guest extends AnonymousUserMixin {
  readonly locale = 'en'
}

declare module 'fastify-login' {
  interface FastifyLoginTypes {
    user: User
    anonymousUser: Guest
  }
}

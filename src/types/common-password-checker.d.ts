declare module 'common-password-checker' {
  /** Whether the password (compared case-insensitively) is on a list of ~15,800 common passwords. */
  export default function commonPassword(password: string): boolean;
}

// A User-Agent header in a few words, for the devices page: "Firefox 128 on
// Windows". Only the usual tokens are looked for (the order matters: Edge and
// Opera also say Chrome, Chrome also says Safari); anything else is shown
// as sent, cut short. It is what the client says about itself, not a proof.

const BROWSERS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\b(?:OPR|OPiOS)\/(\d+)/, 'Opera'],
  [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
  [/\b(?:Firefox|FxiOS)\/(\d+)/, 'Firefox'],
  [/\b(?:HeadlessChrome|Chrome|CriOS)\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)[\d.]* (?:Mobile\/\S+ )?Safari\//, 'Safari']
]

const SYSTEMS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux']
]

/** Longer unknown User-Agents are cut to this many characters. */
const MAX_LENGTH = 60

/** "Chrome 126 on Linux", "Safari 17 on iPhone", or the header itself (cut short) when it names no known browser. */
export function describeUserAgent (userAgent: string): string {
  const system = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1]
  for (const [pattern, name] of BROWSERS) {
    const version = pattern.exec(userAgent)?.[1]
    if (version !== undefined) return system === undefined ? `${name} ${version}` : `${name} ${version} on ${system}`
  }
  if (userAgent.trim() === '') return 'Unknown browser'
  return userAgent.length > MAX_LENGTH ? `${userAgent.slice(0, MAX_LENGTH - 1)}…` : userAgent
}

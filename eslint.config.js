import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  filesTs: ['**/*.cts'],
  ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**']
})

// Which folder of src/ may import which (issue 21, item 5): `npm run layers`, run by scripts/test.sh.
//
// THE LAYER TABLE. This is the one place it is written; docs/architecture.md points here.
// A folder may import only folders of LOWER layers (not its own layer, not a higher one), so the
// imports drawn as floors go one way, down. Subfolders belong to their top folder
// (src/packaging/deb/ is packaging). Type-only imports count: an `import type` upward still ties
// the lower folder to the higher one's changes. src/paths.ts and src/version.ts are leaves that
// every folder may import and that import no folder. A folder of src/ that is in no layer fails
// the check: a new folder is placed here on purpose, not by accident.
//
// To move a folder, or add one: put it in the lowest layer above everything it imports, then run
// `npm run layers`. test/unit/layers.test.ts checks this table against the folders of src/.
const LAYERS = [
  /* L0 */ ['errors'],
  /* L1 */ ['util', 'process', 'matrix'],
  /* L2 */ ['config', 'dkms', 'executor'],
  /* L3 */ ['logging', 'job', 'source', 'ldtarball'],
  /* L4 */ ['archive', 'queue', 'store'],
  /* L5 */ ['images', 'report'],
  /* L6 */ ['packaging', 'signing', 'verify'],
  /* L7 */ ['worker', 'publish'],
  /* L8 */ ['coordinator'],
  /* L9 */ ['service'],
  /* L10 */ ['cli'],
];
const LEAVES = ['paths.ts', 'version.ts'];

const alternatives = (names) => names.map((n) => n.replace(/\./g, '\\.')).join('|');
const placed = LAYERS.flat();
const leafFiles = `^src/(${alternatives(LEAVES)})$`;
const unplacedNot = [`^src/(${alternatives(placed)})/`, leafFiles];

/** One rule per folder: it may import itself, the folders of lower layers and the leaves. */
const layerRules = LAYERS.flatMap((folders, level) => {
  const lower = LAYERS.slice(0, level).flat();
  return folders.map((folder) => ({
    name: `layer-L${level}-${folder}`,
    severity: 'error',
    comment: `src/${folder}/ is in layer L${level}: it may import only ${lower.length ? lower.join(', ') : 'no other folder'} (lower layers) and src/${LEAVES.join(', src/')}. Move the code down, or the folder up in .dependency-cruiser.cjs.`,
    from: { path: `^src/${folder}/` },
    to: { path: '^src/', pathNot: [`^src/(${alternatives([folder, ...lower])})/`, leafFiles] },
  }));
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'folder-in-no-layer',
      severity: 'error',
      comment: 'every folder of src/ has a layer in .dependency-cruiser.cjs (and only src/paths.ts and src/version.ts sit at the top): place a new one on purpose',
      // a module rule, so it fires for a file in an unplaced folder that nothing imports (the
      // schema caps the count at 100; the next rule catches a file that anything imports)
      module: { path: '^src/', pathNot: unplacedNot, numberOfDependentsLessThan: 100 },
      from: {},
    },
    {
      name: 'folder-in-no-layer',
      severity: 'error',
      comment: 'every folder of src/ has a layer in .dependency-cruiser.cjs: place a new one on purpose',
      from: {},
      to: { path: '^src/', pathNot: unplacedNot },
    },
    {
      name: 'leaf-imports-folder',
      severity: 'error',
      comment: `src/${LEAVES.join(' and src/')} are leaves every folder may import, so they import no folder of src/`,
      from: { path: leafFiles },
      to: { path: '^src/', pathNot: leafFiles },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import circle makes load order decide what a module sees (an import still undefined at the top of the other) and ties layers that should go one way',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-not-to-tests',
      severity: 'error',
      comment: 'src/ is what ships (lib/src): it never imports test/ or bench/',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import the cruiser cannot resolve has no target, so no layer rule could judge it: it must not slip by',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // type-only imports are imports: see the table's comment
    tsPreCompilationDeps: true,
    doNotFollow: { path: ['node_modules', '^test/', '^bench/'] },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};

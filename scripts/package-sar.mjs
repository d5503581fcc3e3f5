// npm run package:sar -- --author NAME [--source-code-url URL] [--home-page-url URL] [--out DIR]
// npm run package:sar -- --cdk-only      (only cdk/assets/, for the CDK construct)
//
// The install paths beyond serverless.yml, generated from serverless.yml itself so that
// no second copy of the stack (its role above all) can drift:
//   1. build the bundle and `osls package` it for a neutral stage (offline);
//   2. make the packaged template portable: drop osls's deployment bucket, and turn the
//      function name osls baked in (stage included) into a FunctionName parameter
//      everywhere it occurs (the function, the rotation condition of the role, the
//      log group, the alarm, names and descriptions);
//   3. write it twice:
//      - DIR (dist/sar/): a SAM template for the Serverless Application Repository
//        (AWS::Serverless::Function with CodeUri, Transform, AWS::ServerlessRepo::
//        Application metadata), the function's zip, README.md and LICENSE, ready for
//        `sam package` + `sam publish`;
//      - cdk/assets/: the plain CloudFormation template and the zip that the CDK
//        construct includes (cdk/lib/index.ts).
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The stage osls packages for: a token that occurs nowhere else, so every place it lands can be found. */
export const NEUTRAL_STAGE = 'installpkg';
const SERVICE = 'stytch-secret-rotation';
export const FUNCTION_LOGICAL_ID = 'RotateStytchSecretLambdaFunction';
export const ZIP_NAME = 'rotateStytchSecret.zip';
export const DEFAULT_FUNCTION_NAME = SERVICE;

class UsageError extends Error {}

// Where osls writes the stage into the template, most specific first, and what each
// becomes: the function's name (which is `service-stage`), the secret names
// (`service/stage/...`), and the "(stage)" of names and descriptions.
const STAGE_FORMS = [
  [`${SERVICE} (${NEUTRAL_STAGE})`, '${FunctionName}'],
  [`${SERVICE}-${NEUTRAL_STAGE}`, '${FunctionName}'],
  [`${SERVICE}/${NEUTRAL_STAGE}/`, '${FunctionName}/'],
  [`(${NEUTRAL_STAGE})`, '(${FunctionName})'],
];

const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A string with the stage replaced, as a Fn::Sub template; undefined if it holds no stage. */
function substituteStage(text, inSub) {
  if (!text.includes(NEUTRAL_STAGE)) return undefined;
  // Outside a Fn::Sub, a literal `${` must be escaped once the string becomes one.
  let out = inSub ? text : text.replaceAll('${', '${!');
  for (const [form, replacement] of STAGE_FORMS) out = out.replaceAll(form, replacement);
  return out;
}

/** Replaces every occurrence of the neutral stage in a template node by the FunctionName parameter. */
function parameterizeFunctionName(node, path) {
  if (typeof node === 'string') {
    const sub = substituteStage(node, false);
    if (sub === undefined) return node;
    return sub === '${FunctionName}' ? { Ref: 'FunctionName' } : { 'Fn::Sub': sub };
  }
  if (Array.isArray(node)) return node.map((item, index) => parameterizeFunctionName(item, `${path}[${index}]`));
  if (!isObject(node)) return node;
  const keys = Object.keys(node);
  if (keys.length === 1 && keys[0] === 'Fn::Sub') {
    const args = node['Fn::Sub'];
    if (typeof args === 'string') return { 'Fn::Sub': substituteStage(args, true) ?? args };
    const [text, variables = {}] = args;
    return { 'Fn::Sub': [substituteStage(text, true) ?? text, parameterizeFunctionName(variables, `${path}.Fn::Sub`)] };
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, parameterizeFunctionName(value, `${path}.${key}`)]));
}

/** Paths of the strings that still name something this template no longer has. */
function findStrings(node, test, path = '', found = []) {
  if (typeof node === 'string') {
    if (test(node)) found.push(path);
  } else if (Array.isArray(node)) node.forEach((item, index) => findStrings(item, test, `${path}[${index}]`, found));
  else if (isObject(node)) for (const [key, value] of Object.entries(node)) findStrings(value, test, `${path}.${key}`, found);
  return found;
}

/**
 * The osls-packaged template made portable: no deployment bucket, the function name a
 * parameter. The function's Code is left to each path (SAM CodeUri, CDK asset).
 */
export function portableTemplate(packaged) {
  const template = structuredClone(packaged);
  // osls uploads the zip to its own bucket; SAM and the CDK bring their own.
  delete template.Resources.ServerlessDeploymentBucket;
  delete template.Resources.ServerlessDeploymentBucketPolicy;
  delete template.Outputs.ServerlessDeploymentBucketName;
  const fn = template.Resources[FUNCTION_LOGICAL_ID];
  if (fn?.Type !== 'AWS::Lambda::Function') throw new Error(`the packaged template has no ${FUNCTION_LOGICAL_ID}: did serverless.yml rename the function?`);
  delete fn.Properties.Code;

  const parameterized = parameterizeFunctionName({ Resources: template.Resources, Outputs: template.Outputs }, '');
  template.Resources = parameterized.Resources;
  template.Outputs = parameterized.Outputs;
  const leftovers = [
    ...findStrings(template, (text) => text.includes(NEUTRAL_STAGE)),
    ...findStrings(template, (text) => text === 'ServerlessDeploymentBucket' || text.startsWith('ServerlessDeploymentBucket.')),
  ];
  if (leftovers.length > 0) {
    throw new Error(`the stage or the deployment bucket is still named at ${leftovers.join(', ')}: teach STAGE_FORMS in scripts/package-sar.mjs this form`);
  }
  template.Description =
    'Rotates Stytch Connected App and M2M client secrets held in AWS Secrets Manager, with its state table, retirement sweep and alerts.';
  template.Parameters = {
    FunctionName: {
      Type: 'String',
      Default: DEFAULT_FUNCTION_NAME,
      // Also the prefix of the alarm (`-errors`, 7 more characters) and of the secret
      // names; Lambda allows 64 characters.
      AllowedPattern: '^[a-zA-Z0-9_-]{1,57}$',
      ConstraintDescription: 'letters, digits, hyphens and underscores, at most 57 characters.',
      Description:
        'Name of the rotation function, also the prefix of its alarm and of the credentials secret name. One per account and region: give each deployment its own.',
    },
    ...template.Parameters,
  };
  return template;
}

/** The portable template as SAM: the function becomes an AWS::Serverless::Function with the zip as CodeUri. */
export function samTemplate(portable, metadata) {
  const template = structuredClone(portable);
  const fn = template.Resources[FUNCTION_LOGICAL_ID];
  // Same properties (handler, runtime, arm64, memory, timeout, environment, role, VPC,
  // reserved concurrency); SAM passes them through to the AWS::Lambda::Function it
  // generates under the same logical id, so every Ref and GetAtt still holds.
  fn.Type = 'AWS::Serverless::Function';
  fn.Properties = { CodeUri: ZIP_NAME, ...fn.Properties };
  return {
    AWSTemplateFormatVersion: template.AWSTemplateFormatVersion,
    Transform: 'AWS::Serverless-2016-10-31',
    Description: template.Description,
    Metadata: { 'AWS::ServerlessRepo::Application': metadata },
    Parameters: template.Parameters,
    Conditions: template.Conditions,
    Resources: template.Resources,
    Outputs: template.Outputs,
  };
}

/** The portable template as the CDK construct includes it: the construct puts its asset where this placeholder is. */
export function cdkTemplate(portable) {
  const template = structuredClone(portable);
  template.Resources[FUNCTION_LOGICAL_ID].Properties = {
    Code: { S3Bucket: CDK_CODE_PLACEHOLDER, S3Key: ZIP_NAME },
    ...template.Resources[FUNCTION_LOGICAL_ID].Properties,
  };
  return template;
}
export const CDK_CODE_PLACEHOLDER = 'replaced-by-the-cdk-asset';

// The Serverless Application Repository's limits (CreateApplication API reference).
const AUTHOR = /^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$/;
const URL = /^https:\/\/\S+$/;

export function applicationMetadata({ author, sourceCodeUrl, homePageUrl }, pkg) {
  if (!author) throw new UsageError('--author is required: the publisher shown in the Serverless Application Repository (e.g. --author my-team).');
  if (author.length > 127 || !AUTHOR.test(author)) {
    throw new UsageError(`--author ${JSON.stringify(author)} is not a valid author: use 1 to 127 lowercase letters, digits and single hyphens (e.g. my-team).`);
  }
  for (const [flag, value] of [['--source-code-url', sourceCodeUrl], ['--home-page-url', homePageUrl]]) {
    if (value !== undefined && !URL.test(value)) throw new UsageError(`${flag} must be an https:// URL, got ${JSON.stringify(value)}.`);
  }
  return {
    Name: pkg.name,
    Description: 'Rotates Stytch Connected App and M2M client secrets in Secrets Manager with no outage: overlap window, state table, alerts.',
    Author: author,
    SpdxLicenseId: pkg.license,
    LicenseUrl: 'LICENSE',
    ReadmeUrl: 'README.md',
    Labels: ['stytch', 'secretsmanager', 'rotation', 'oauth', 'm2m'],
    ...(homePageUrl ? { HomePageUrl: homePageUrl } : {}),
    SemanticVersion: pkg.version,
    ...(sourceCodeUrl ? { SourceCodeUrl: sourceCodeUrl } : {}),
  };
}

/** README.md of the application: the install guide, then its parameters from the template itself. */
function applicationReadme(template) {
  const guide = readFileSync(join(ROOT, 'docs/sar.md'), 'utf8').trimEnd();
  const rows = Object.entries(template.Parameters).map(([name, spec]) => {
    const fallback = spec.Default === undefined || spec.Default === '' ? '(empty)' : `\`${spec.Default}\``;
    return `| \`${name}\` | ${fallback} | ${String(spec.Description ?? '').replaceAll('|', '\\|').replace(/\s+/g, ' ')} |`;
  });
  return `${guide}\n\n## Parameters\n\n| Parameter | Default | Meaning |\n| --- | --- | --- |\n${rows.join('\n')}\n`;
}

// What `osls package` reads. It stages its output in the project's .serverless/, so it
// runs in a copy: a deploy or a test packaging at the same time is left alone.
const PROJECT_FILES = ['package.json', 'serverless.yml', 'infra', 'dist/rotate-stytch-secret'];

async function oslsPackage(work) {
  const project = join(work, 'project');
  for (const entry of PROJECT_FILES) cpSync(join(ROOT, entry), join(project, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
  const dir = join(work, 'package');
  const osls = join(ROOT, 'node_modules/osls/bin/serverless.js');
  // `package` never calls AWS or the network.
  await run(process.execPath, [osls, 'package', '--stage', NEUTRAL_STAGE, '--region', 'us-east-1', '--package', dir], {
    cwd: project,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error) => {
    throw new Error(`osls package failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  return JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
}

async function main() {
  const { values } = parseArgs({
    options: {
      author: { type: 'string' },
      'source-code-url': { type: 'string' },
      'home-page-url': { type: 'string' },
      out: { type: 'string', default: 'dist/sar' },
      'cdk-assets': { type: 'string', default: 'cdk/assets' },
      'skip-build': { type: 'boolean', default: false },
      // Only the CDK construct's assets (its build and tests): no SAR folder, no author.
      'cdk-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const cdkOnly = values['cdk-only'];
  const metadata = cdkOnly
    ? undefined
    : applicationMetadata({ author: values.author, sourceCodeUrl: values['source-code-url'], homePageUrl: values['home-page-url'] }, pkg);
  if (!values['skip-build']) await run(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT });

  const work = mkdtempSync(join(tmpdir(), 'stytch-rotation-sar-'));
  try {
    const portable = portableTemplate(await oslsPackage(work));
    const zip = join(work, 'package', ZIP_NAME);

    if (metadata) {
      const out = resolve(values.out);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true });
      const sam = samTemplate(portable, metadata);
      writeFileSync(join(out, 'template.json'), `${JSON.stringify(sam, null, 2)}\n`);
      copyFileSync(zip, join(out, ZIP_NAME));
      copyFileSync(join(ROOT, 'LICENSE'), join(out, 'LICENSE'));
      writeFileSync(join(out, 'README.md'), applicationReadme(sam));
      console.log(`SAR application ${metadata.Name} ${metadata.SemanticVersion} in ${relative(process.cwd(), out) || '.'}/ (template.json, ${ZIP_NAME}, README.md, LICENSE)`);
    }

    const assets = resolve(values['cdk-assets']);
    mkdirSync(assets, { recursive: true });
    writeFileSync(join(assets, 'template.json'), `${JSON.stringify(cdkTemplate(portable), null, 2)}\n`);
    copyFileSync(zip, join(assets, ZIP_NAME));
    console.log(`CDK construct assets in ${relative(process.cwd(), assets) || '.'}/`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error instanceof UsageError ? `package:sar: ${error.message}` : error);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  });
}

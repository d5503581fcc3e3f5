// The Serverless Application Repository package (`npm run package:sar`): a SAM template
// generated from serverless.yml's own packaged template. It is transformed offline by
// aws-sam-translator, AWS's implementation of the AWS::Serverless transform, and the
// result must be serverless.yml's stack: the same resources with the same properties
// (the role's statements among them) for the same parameters, and cfn-lint clean.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Evaluation, findCfnLint, type Json, policyStatements, type Template, zipEntries } from '../helpers/cfn.js';
import {
  EVERY_OPTION,
  EXISTING_CREDENTIALS,
  ensureBundle,
  FUNCTION_NAME,
  findSamTranslator,
  packageInstallPaths,
  packageServerless,
  ROOT,
  translateSam,
  WORLD,
} from '../helpers/install-paths.js';
import { toolGate } from '../helpers/moto.js';

const run = promisify(execFile);

const python = await findSamTranslator();
const gate = toolGate('aws-sam-translator (python -c "import samtranslator")', python);

interface SamTemplate extends Template {
  Transform: string;
  Metadata: { 'AWS::ServerlessRepo::Application': Record<string, Json> };
}

// The secret of a workspace management key (ManagementCredentialsSecretArn), and the
// template parameters with every optional part on, that one included.
const MANAGEMENT_CREDENTIALS = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:stytch/management-credentials-MgKyAb';
const EVERY_OPTION_AND_MANAGEMENT_KEY: Record<string, string> = { ...EVERY_OPTION, ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS };

const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
// osls names what depends on the stage after `service/stage/` and `(stage)`; the SAR
// template after its FunctionName parameter. Given FUNCTION_NAME, these are the names
// the SAR template gives the same things (secret names, descriptions).
const asSarNames = (template: Template): unknown =>
  JSON.parse(
    JSON.stringify(template)
      .replaceAll('stytch-secret-rotation (test)', FUNCTION_NAME)
      .replaceAll('stytch-secret-rotation/test/', `${FUNCTION_NAME}/`)
      .replaceAll('(test)', `(${FUNCTION_NAME})`),
  );

describe.skipIf(gate.skip)(gate.title('Serverless Application Repository package (npm run package:sar)'), () => {
  let sarDir: string;
  let cdkAssets: string;
  let oslsDir: string;
  let osls: Template;
  let sam: SamTemplate;
  let translated: Template;

  beforeAll(async () => {
    gate.assert();
    await ensureBundle();
    ({ sar: sarDir, cdkAssets } = await packageInstallPaths());
    ({ dir: oslsDir, template: osls } = await packageServerless());
    sam = JSON.parse(readFileSync(join(sarDir, 'template.json'), 'utf8')) as SamTemplate;
    translated = await translateSam(python ?? '', sam);
  }, 120_000);

  afterAll(() => {
    for (const dir of [sarDir, cdkAssets, oslsDir]) if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('writes the template, the zip serverless.yml deploys, the README and the licence, nothing else', () => {
    // Assess
    expect(readdirSync(sarDir).sort()).toEqual(['LICENSE', 'README.md', 'rotateStytchSecret.zip', 'template.json']);
    expect(zipEntries(join(sarDir, 'rotateStytchSecret.zip'))).toEqual(zipEntries(join(oslsDir, 'rotateStytchSecret.zip')));
    expect(readFileSync(join(sarDir, 'LICENSE'), 'utf8')).toContain('Apache License');
    // The README lists every parameter, from the template itself.
    const readme = readFileSync(join(sarDir, 'README.md'), 'utf8');
    for (const name of Object.keys(sam.Parameters)) expect(readme).toContain(`| \`${name}\` |`);
  });

  it('describes the application within the Serverless Application Repository\'s limits, versioned as package.json', () => {
    // Act
    const app = sam.Metadata['AWS::ServerlessRepo::Application'];

    // Assess
    expect(sam.Transform).toBe('AWS::Serverless-2016-10-31');
    expect(app).toMatchObject({
      Name: PACKAGE.name,
      Author: 'example-publisher',
      SpdxLicenseId: 'Apache-2.0',
      SemanticVersion: PACKAGE.version,
      LicenseUrl: 'LICENSE',
      ReadmeUrl: 'README.md',
    });
    expect(String(app.Name)).toMatch(/^[a-zA-Z0-9-]{1,140}$/);
    expect(String(app.Description).length).toBeLessThanOrEqual(256);
    expect(String(app.SemanticVersion)).toMatch(/^\d+\.\d+\.\d+$/);
    const labels = app.Labels as string[];
    expect(labels.length).toBeLessThanOrEqual(10);
    for (const label of labels) expect(label).toMatch(/^[a-zA-Z0-9+\-_:/@]{1,127}$/);
    // sam package uploads the files these name, from beside the template.
    for (const file of [app.LicenseUrl, app.ReadmeUrl, sam.Resources.RotateStytchSecretLambdaFunction?.Properties.CodeUri]) {
      expect(existsSync(join(sarDir, String(file))), String(file)).toBe(true);
    }
  });

  it('keeps no trace of osls: no deployment bucket, no stage', () => {
    // Assess
    const text = JSON.stringify(sam);
    expect(text).not.toContain('ServerlessDeploymentBucket');
    expect(text).not.toContain('installpkg');
    expect(Object.keys(sam.Resources)).toEqual(Object.keys(osls.Resources).filter((id) => !id.startsWith('ServerlessDeploymentBucket')));
  });

  describe.each([
    ['with the defaults', {}],
    ['with every option on', EVERY_OPTION_AND_MANAGEMENT_KEY],
    ['with a management key and an existing credentials secret', { ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS, ExistingCredentialsSecretArn: EXISTING_CREDENTIALS }],
    ['with an existing credentials secret', { ExistingCredentialsSecretArn: EXISTING_CREDENTIALS, AlertsKmsKeyArn: EVERY_OPTION.KmsKeyArn ?? '' }],
    ['with an existing alerts topic', { AlertsTopicArn: 'arn:aws:sns:us-east-1:123456789012:platform-alerts', AlarmEmail: 'oncall@example.com' }],
  ])('transformed by aws-sam-translator, %s', (_name, parameters: Record<string, string>) => {
    it('creates the resources serverless.yml creates, with the same properties', () => {
      // Prepare
      const named = asSarNames(osls) as Template;
      const fromOsls = new Evaluation(named, parameters, WORLD);
      const fromSam = new Evaluation(translated, { ...parameters, FunctionName: FUNCTION_NAME }, WORLD);
      const created = (evaluation: Evaluation, template: Template) =>
        Object.keys(template.Resources).filter((id) => !id.startsWith('ServerlessDeploymentBucket') && evaluation.creates(id));

      // Act / Assess
      expect(created(fromSam, translated)).toEqual(expect.arrayContaining(created(fromOsls, osls)));
      expect(created(fromSam, translated)).toHaveLength(created(fromOsls, osls).length);
      for (const id of created(fromOsls, osls)) {
        const mine = translated.Resources[id];
        const theirs = named.Resources[id];
        expect(mine?.Type, id).toBe(theirs?.Type);
        const properties = fromSam.resolve(mine?.Properties ?? null) as Record<string, Json>;
        // osls's Code names its deployment bucket, which the SAR template has not.
        const { Code: _oslsCode, ...theirProperties } = theirs?.Properties ?? {};
        const expected = fromOsls.resolve(theirProperties) as Record<string, Json>;
        if (id === 'RotateStytchSecretLambdaFunction') {
          // The code comes from the SAR artifact instead of osls's bucket; SAM tags what it makes.
          expect(properties.Code).toEqual({ S3Bucket: 'sar-artifacts-bucket', S3Key: 'rotateStytchSecret.zip' });
          expect(properties.Tags).toEqual([{ Key: 'lambda:createdBy', Value: 'SAM' }]);
          delete properties.Code;
          delete properties.Tags;
        }
        expect(properties, id).toEqual(expected);
      }
    });

    it('gives the role exactly the statements serverless.yml gives it', () => {
      // Act
      const statements = (template: Template, values: Record<string, string>) =>
        policyStatements(new Evaluation(template, values, WORLD).resolve(template.Resources.RotateStytchSecretRole?.Properties.Policies ?? null));

      // Assess
      const expected = statements(osls, parameters);
      expect(expected.map((statement) => statement.Sid)).toContain('RotateStytchClientSecrets');
      expect(expected.some((statement) => statement.Sid === 'ReadStytchManagementCredentials')).toBe('ManagementCredentialsSecretArn' in parameters);
      expect(statements(translated, { ...parameters, FunctionName: FUNCTION_NAME })).toEqual(expected);
    });
  });

  it('names the function, its log group, its alarm and the rotation condition after FunctionName', () => {
    // Act
    const evaluation = new Evaluation(translated, { FunctionName: 'billing-rotation' }, WORLD);
    const resolved = (id: string) => evaluation.resolve(translated.Resources[id]?.Properties ?? null) as Record<string, Json>;

    // Assess
    expect(resolved('RotateStytchSecretLambdaFunction').FunctionName).toBe('billing-rotation');
    expect(resolved('RotateStytchSecretLogGroup').LogGroupName).toBe('/aws/lambda/billing-rotation');
    expect(resolved('RotateStytchSecretErrorsAlarm').AlarmName).toBe('billing-rotation-errors');
    expect(resolved('StytchCredentialsSecret').Name).toBe('billing-rotation/stytch-project-credentials');
    const [rotation] = policyStatements(resolved('RotateStytchSecretRole').Policies ?? null);
    expect(rotation?.Condition).toMatchObject({
      StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': 'arn:aws:lambda:us-east-1:123456789012:function:billing-rotation' },
    });
    // The KMS key of the alerts topic lets exactly this alarm publish.
    expect(JSON.stringify(resolved('RotationAlertsKey'))).toContain(':alarm:billing-rotation-errors');
    expect(() => new Evaluation(translated, { FunctionName: 'no spaces' }, WORLD)).toThrow(/FunctionName/);
  });

  it('outputs the function ARN and the role ARN', () => {
    // Assess
    expect(sam.Outputs.RotationFunctionArn?.Value).toEqual({ 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] });
    expect(sam.Outputs.RotationFunctionRoleArn?.Value).toEqual({ 'Fn::GetAtt': ['RotateStytchSecretRole', 'Arn'] });
  });

  it('passes cfn-lint without errors or warnings once transformed, with every option on and off', async () => {
    // Prepare: cfn-lint reads parameter defaults when it checks values and conditions.
    const cfnLint = await findCfnLint();
    if (!cfnLint) throw new Error('cfn-lint is required with aws-sam-translator (pip install cfn-lint)');
    const dir = mkdtempSync(join(tmpdir(), 'stytch-rotation-sar-lint-'));
    const files = [join(dir, 'transformed.json'), join(dir, 'sam.json')];
    writeFileSync(files[0] ?? '', JSON.stringify(translated));
    writeFileSync(files[1] ?? '', JSON.stringify(sam)); // cfn-lint's own SAM transform too
    const everything = structuredClone(translated);
    for (const [name, value] of Object.entries(EVERY_OPTION_AND_MANAGEMENT_KEY)) {
      const spec = everything.Parameters[name];
      if (!spec) throw new Error(`no parameter ${name}`);
      spec.Default = spec.Type === 'Number' ? Number(value) : value;
    }
    new Evaluation(everything, {}, WORLD); // the values are valid for the parameters (throws if not)
    files.push(join(dir, 'every-option.json'));
    writeFileSync(join(dir, 'every-option.json'), JSON.stringify(everything));

    // Act
    const result = await run(cfnLint, ['--format', 'json', '--', ...files]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
    rmSync(dir, { recursive: true, force: true });

    // Assess
    const findings = JSON.parse(result.stdout || '[]') as { Rule: { Id: string }; Message: string; Filename: string }[];
    expect(findings.map((finding) => `${finding.Filename}: ${finding.Rule.Id} ${finding.Message}`)).toEqual([]);
  }, 120_000);

  it.each([
    [[], /--author is required/],
    [['--author', 'My Team'], /not a valid author: use 1 to 127 lowercase letters/],
    [['--author', 'my-team', '--source-code-url', 'http://example.com/repo'], /--source-code-url must be an https:\/\/ URL/],
  ])('refuses to package with %j, saying what to pass, and writes nothing', async (args, message) => {
    // Prepare
    const out = join(mkdtempSync(join(tmpdir(), 'stytch-rotation-sar-bad-')), 'sar');

    // Act
    const result = await run(process.execPath, [join(ROOT, 'scripts/package-sar.mjs'), '--skip-build', '--out', out, '--cdk-assets', out, ...args], {
      cwd: ROOT,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code?: number; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
    rmSync(join(out, '..'), { recursive: true, force: true });
  });
});

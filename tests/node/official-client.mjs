// Drives the official @actions/artifact client against the fake GitHub that
// tests/it/artifacts.rs starts, so the test can compare its requests with dbbackup's.
//
//   node official-client.mjs upload NAME ROOT FILE...   -> uploadArtifact, retention 7 days
//   node official-client.mjs download ID OUT            -> downloadArtifact through the REST API
//
// The job environment (ACTIONS_RUNTIME_TOKEN, ACTIONS_RESULTS_URL, GITHUB_TOKEN,
// GITHUB_REPOSITORY, GITHUB_API_URL, GITHUB_RUN_ID) comes from the test.
import { DefaultArtifactClient } from '@actions/artifact';

const [mode, ...args] = process.argv.slice(2);
const client = new DefaultArtifactClient();

if (mode === 'upload') {
  const [name, root, ...files] = args;
  const result = await client.uploadArtifact(name, files, root, { retentionDays: 7 });
  console.log(JSON.stringify(result));
} else if (mode === 'download') {
  const [id, out] = args;
  const [owner, repo] = process.env.GITHUB_REPOSITORY.split('/');
  const result = await client.downloadArtifact(Number(id), {
    path: out,
    findBy: {
      token: process.env.GITHUB_TOKEN,
      workflowRunId: Number(process.env.GITHUB_RUN_ID),
      repositoryOwner: owner,
      repositoryName: repo,
    },
  });
  console.log(JSON.stringify(result));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

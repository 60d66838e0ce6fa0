// The owner's control of a job's read-only link: make one (shown once:
// only its hash is kept), copy it, replace it, stop sharing.
import { api, get, post, type Share } from './api';
import { confirmDialog, toast } from './app';
import { fill, h } from './dom';
import { when } from './format';

export function shareControls(jobId: string): HTMLElement {
  const box = h('section', { id: 'share', class: 'share panel' }, h('h2', null, 'Share'));
  const body = h('div', { class: 'share-body' });
  box.append(body);
  const path = `/api/v1/jobs/${encodeURIComponent(jobId)}/share`;

  const make = async () => {
    try {
      const sh = await post<Share>(path);
      const url = location.origin + sh.url;
      const input = h('input', { id: 'share-url', readonly: true, value: url, 'aria-label': 'Read-only link', spellcheck: 'false' });
      fill(body,
        h('p', null, 'Anyone with this link can see this job (source, input, output, result), read-only, without logging in. ',
          'Keep it now: it is shown only once.'),
        h('div', { class: 'group' }, input,
          h('button', { type: 'button', id: 'share-copy', class: 'secondary small', onclick: async () => {
            input.select();
            try { await navigator.clipboard.writeText(url); toast('Link copied.', 'info'); } catch { toast('Copy the selected link with Ctrl-C.'); }
          } }, 'Copy')),
        stop());
      input.select();
    } catch (e) {
      toast(`Sharing failed: ${(e as Error).message}`);
    }
  };
  const stop = () => h('button', { type: 'button', id: 'share-stop', class: 'danger small', onclick: async () => {
    if (!(await confirmDialog('Stop sharing this job? The link stops working at once.', 'Stop sharing', 'unshare-dialog'))) return;
    try {
      await api('DELETE', path);
      toast('The link no longer works.', 'info');
      notShared();
    } catch (e) {
      toast(`Stop sharing failed: ${(e as Error).message}`);
    }
  } }, 'Stop sharing');
  const notShared = () => fill(body,
    h('p', { class: 'muted', id: 'share-state' }, 'Only you (and admins) can see this job.'),
    h('button', { type: 'button', id: 'share-make', class: 'secondary', onclick: make }, 'Make a read-only link'));

  void (async () => {
    try {
      const sh = await get<Share>(path);
      if (!sh.shared) return notShared();
      fill(body,
        h('p', { id: 'share-state' }, `Shared by a read-only link since ${when(sh.created_at)}. The link was shown when it was made; a new one replaces it.`),
        h('div', { class: 'group' },
          h('button', { type: 'button', id: 'share-make', class: 'secondary small', onclick: make }, 'Make a new link'), stop()));
    } catch (e) {
      fill(body, h('p', { class: 'error' }, `Cannot tell whether the job is shared: ${(e as Error).message}`));
    }
  })();
  return box;
}

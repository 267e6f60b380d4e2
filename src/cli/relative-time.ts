/** Docker's "5 minutes ago" (go-units HumanDuration), for a moment `then` seen at `now`. */
export function timeAgo(then: Date, now: Date): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - then.getTime()) / 1000));
  if (seconds < 1) return "Less than a second ago";
  if (seconds === 1) return "1 second ago";
  if (seconds < 60) return `${seconds} seconds ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return "About a minute ago";
  if (minutes < 60) return `${minutes} minutes ago`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return "About an hour ago";
  if (hours < 48) return `${hours} hours ago`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days ago`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks ago`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months ago`;
  return `${Math.floor(hours / 24 / 365)} years ago`;
}

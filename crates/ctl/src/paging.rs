//! Following `next_page_token` up to a limit: how many to ask for next.

/// The most a list call returns.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The page size of the next call after `got` items, or `None` once `limit`
/// is reached. `preferred` is the size asked for when no limit is near.
pub fn next_page_size(limit: Option<usize>, got: usize, preferred: u32) -> Option<u32> {
    let preferred = preferred.clamp(1, MAX_PAGE_SIZE);
    match limit {
        None => Some(preferred),
        Some(limit) if got >= limit => None,
        Some(limit) => Some(u32::try_from(limit - got).map_or(preferred, |left| left.min(preferred))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stop_at_the_limit() {
        assert_eq!(next_page_size(None, 5000, 1000), Some(1000));
        assert_eq!(next_page_size(Some(50), 0, 1000), Some(50));
        assert_eq!(next_page_size(Some(2500), 2000, 1000), Some(500));
        assert_eq!(next_page_size(Some(50), 50, 1000), None);
        assert_eq!(next_page_size(Some(0), 0, 1000), None);
        assert_eq!(next_page_size(Some(usize::MAX), 0, 5000), Some(1000));
        assert_eq!(next_page_size(None, 0, 0), Some(1));
    }
}

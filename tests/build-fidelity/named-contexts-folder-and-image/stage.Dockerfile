FROM files
